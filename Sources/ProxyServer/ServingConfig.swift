import CORSPolicy
import ProxyConfig

/// One route as the data path uses it: the resolved route plus what is
/// precomputed at load (compiled policy, upstream origin, Host value).
package final class ServingRoute: Sendable {
    package let route: Route
    /// nil: `cors off`.
    package let policy: CompiledPolicy?
    /// `scheme://host[:port]` of the upstream.
    private let upstreamOrigin: String

    package init(route: Route) {
        self.route = route
        self.policy = route.cors.map { CompiledPolicy(settings: $0, routePattern: route.label) }
        self.upstreamOrigin = "\(route.upstream.scheme.rawValue)://\(route.upstream.authority)"
    }

    package var label: String { route.label }
    package var upstreamName: String { route.upstream.name }
    package var upstreamHostHeader: String { route.upstream.authority }
    package var preserveHost: Bool { route.preserveHost }
    package var maxBodySize: Int64 { route.maxBodySize }
    package var connectTimeoutMilliseconds: Int { Int(route.upstream.connectTimeoutMilliseconds) }
    package var timeoutMilliseconds: Int { Int(route.upstream.timeoutMilliseconds) }

    /// The URL sent upstream (SPEC 2, "Forwarded URL"), the query as received.
    package func upstreamURL(path: Substring, query: Substring) -> String {
        upstreamOrigin + route.forwardPath(path: path) + query
    }
}
