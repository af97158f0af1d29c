import CORSPolicy
import ProxyConfig

/// The conf as the data path uses it: immutable, swapped whole on reload.
package final class ServingConfig: Sendable {
    package let configuration: ProxyConfiguration
    /// Routes in match order (exact first, then longest prefix first).
    private let routes: [ServingRoute]
    /// The top-level `cors {}`: decides the no-route 404's headers.
    package let defaultPolicy: CompiledPolicy
    /// The `route="-"` series: requests no route matched.
    package let noRouteMetrics: RouteMetrics

    /// `metrics`: where the routes count their requests (`explain` passes a no-op sink).
    package init(_ configuration: ProxyConfiguration, metrics: ProxyMetrics) {
        self.configuration = configuration
        self.routes = configuration.routes.matchOrder.map { ServingRoute(route: $0, metrics: metrics) }
        self.defaultPolicy = CompiledPolicy(settings: configuration.defaultCORS, routePattern: "-")
        self.noRouteMetrics = metrics.routeMetrics(label: "-")
    }

    /// The route for a request path (before `?`, as received).
    package func route(for path: Substring) -> ServingRoute? {
        // Match order makes the first hit the winner: exact beats prefix, longest prefix wins.
        for route in routes where route.matches(path) { return route }
        return nil
    }

    /// The decision for a WebSocket handshake on `route`: the origin is checked as for an actual
    /// request; a `cors off` route tunnels it unchecked; no route is the usual 404.
    package func decideWebSocket(_ facts: RequestFacts, route: ServingRoute?) -> Decision {
        guard let route else {
            return defaultPolicy.decideNoRoute(facts, selfOrigins: configuration.selfOrigins)
        }
        guard let policy = route.policy else { return .passThrough }
        return policy.decideWebSocket(facts, selfOrigins: configuration.selfOrigins)
    }

    /// The decision for a request on `route` (nil: no route matched).
    package func decide(_ facts: RequestFacts, route: ServingRoute?) -> Decision {
        guard let route else {
            return defaultPolicy.decideNoRoute(facts, selfOrigins: configuration.selfOrigins)
        }
        guard let policy = route.policy else { return .passThrough }
        return policy.decide(facts, selfOrigins: configuration.selfOrigins)
    }
}
