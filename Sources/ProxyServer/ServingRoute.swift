import CORSPolicy
import ProxyConfig
import Upstream

/// One route as the data path uses it: the resolved route plus what is
/// precomputed at load (compiled policy, upstream origin, labels, metric series,
/// rendered preflight answers), so a request reads stored values.
package final class ServingRoute: Sendable {
    package let route: Route
    /// nil: `cors off`.
    package let policy: CompiledPolicy?
    /// The pattern as written (`/api/`, `= /healthz`): metrics and logs.
    package let label: String
    package let upstreamName: String
    package let upstreamHostHeader: String
    package let preserveHost: Bool
    package let maxBodySize: Int64
    package let connectTimeoutMilliseconds: Int
    package let timeoutMilliseconds: Int
    /// The upstream's TLS settings for `TransferRequest`; nil for `http://`.
    package let upstreamTLS: UpstreamTLS?
    package let metrics: RouteMetrics
    package let preflightResponses = PreflightResponseCache()
    /// `scheme://host[:port]` of the upstream.
    private let upstreamOrigin: String
    // What matching and forwarding read of `route`, stored apart: reading `route.path` from
    // another module copies the whole `Route` first (a retain and release per string in it).
    private let matchKind: RouteKind
    private let matchPath: String
    private let stripPrefix: String?
    private let upstreamBasePath: String

    /// `websocket off` on a CORS route: a handshake the origin check lets through gets 501.
    package var refusesWebSocket: Bool { policy?.settings.websocket == false }

    package init(route: Route, metrics: ProxyMetrics) {
        self.route = route
        self.policy = route.cors.map { CompiledPolicy(settings: $0, routePattern: route.label) }
        self.label = route.label
        self.upstreamName = route.upstream.name
        self.upstreamHostHeader = route.upstream.authority
        self.preserveHost = route.preserveHost
        self.maxBodySize = route.maxBodySize
        self.connectTimeoutMilliseconds = Int(route.upstream.connectTimeoutMilliseconds)
        self.timeoutMilliseconds = Int(route.upstream.timeoutMilliseconds)
        self.upstreamTLS = route.upstream.tls.map {
            UpstreamTLS(
                caFile: $0.caFile?.path, verify: $0.verify, clientCertificate: $0.clientIdentity?.certificate.path,
                clientKey: $0.clientIdentity?.key.path)
        }
        self.metrics = metrics.routeMetrics(label: route.label)
        self.upstreamOrigin = "\(route.upstream.scheme.rawValue)://\(route.upstream.authority)"
        self.matchKind = route.kind
        self.matchPath = route.path
        self.stripPrefix = route.stripPrefix
        self.upstreamBasePath = route.upstream.basePath
    }

    /// Whether this route covers `path` (before `?`, as received).
    package func matches(_ path: Substring) -> Bool {
        Route.matches(kind: matchKind, path: matchPath, path)
    }

    /// The request target sent upstream: the upstream's base path, the path (with
    /// `strip_prefix` applied) and the query as received.
    package func upstreamTarget(path: Substring, query: Substring) -> String {
        Route.forwardPath(basePath: upstreamBasePath, stripPrefix: stripPrefix, path: path) + query
    }

    /// The URL sent upstream (docs/CONFIG.md §5, "Forwarded URL"), the query as received.
    package func upstreamURL(path: Substring, query: Substring) -> String {
        upstreamOrigin + Route.forwardPath(basePath: upstreamBasePath, stripPrefix: stripPrefix, path: path) + query
    }
}
