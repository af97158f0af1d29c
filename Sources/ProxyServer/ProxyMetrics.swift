import CORSPolicy
import CoreMetrics
import HeaderFields
import NIOConcurrencyHelpers
import Synchronization
import Upstream

/// The Prometheus metrics (names and labels: docs/DESIGN.md, "Metrics"; dashboards depend on
/// them, so never rename one). Per-route series live in `RouteMetrics`, resolved when a conf is
/// loaded; the rest are created once per label set and cached.
package final class ProxyMetrics: Sendable {
    private struct DenialKey: Hashable {
        var route: String
        var reason: DenialReason
    }
    private struct UpstreamKey: Hashable {
        var upstream: String
        var kind: UpstreamError.Kind
    }

    private let factory: any MetricsFactory
    private let denials = NIOLockedValueBox<[DenialKey: Counter]>([:])
    private let upstreamErrors = NIOLockedValueBox<[UpstreamKey: Counter]>([:])
    private let inFlightGauge: Meter
    private let tunnelsGauge: Meter
    private let tunnelCount = Atomic<Int>(0)
    private let tlsHandshakeErrors: Counter
    private let inFlightCount = Atomic<Int>(0)
    private let reloadsOK: Counter
    private let reloadsFailed: Counter

    package init(factory: any MetricsFactory) {
        self.factory = factory
        self.inFlightGauge = Meter(label: "cors_proxy_in_flight_requests", dimensions: [], factory: factory)
        self.tunnelsGauge = Meter(label: "cors_proxy_websocket_tunnels", dimensions: [], factory: factory)
        tunnelsGauge.set(0)
        self.tlsHandshakeErrors = Counter(
            label: "cors_proxy_tls_handshake_errors_total", dimensions: [], factory: factory)
        self.reloadsOK = Counter(label: "cors_proxy_reloads_total", dimensions: [("outcome", "ok")], factory: factory)
        self.reloadsFailed = Counter(
            label: "cors_proxy_reloads_total", dimensions: [("outcome", "error")], factory: factory)
    }

    /// A route's request counters and duration timer. Built with the conf, so the request
    /// path indexes an array instead of hashing a label per request.
    package func routeMetrics(label: String) -> RouteMetrics {
        RouteMetrics(label: label, owner: self)
    }

    /// The denial counter for a route and reason (denials only, so a dictionary lookup is fine).
    fileprivate func countDenial(route: String, reason: DenialReason) {
        let key = DenialKey(route: route, reason: reason)
        let counter = denials.withLockedValue { table in
            if let c = table[key] { return c }
            let c = Counter(
                label: "cors_proxy_denials_total", dimensions: [("route", route), ("reason", reason.rawValue)],
                factory: factory)
            table[key] = c
            return c
        }
        counter.increment()
    }

    fileprivate func makeRequestCounter(route: String, kind: RequestKind, outcome: String) -> Counter {
        Counter(
            label: "cors_proxy_requests_total",
            dimensions: [("route", route), ("kind", kind.rawValue), ("outcome", outcome)], factory: factory)
    }

    fileprivate func makeDurationTimer(route: String) -> Timer {
        Timer(label: "cors_proxy_request_duration_seconds", dimensions: [("route", route)], factory: factory)
    }

    package func upstreamError(upstream: String, kind: UpstreamError.Kind) {
        let key = UpstreamKey(upstream: upstream, kind: kind)
        let counter = upstreamErrors.withLockedValue { table in
            if let c = table[key] { return c }
            let c = Counter(
                label: "cors_proxy_upstream_errors_total",
                dimensions: [("upstream", upstream), ("kind", kind.rawValue)],
                factory: factory)
            table[key] = c
            return c
        }
        counter.increment()
    }

    package func requestStarted() {
        let now = inFlightCount.add(1, ordering: .relaxed).newValue
        inFlightGauge.set(now)
    }

    package func requestFinished() {
        let now = inFlightCount.subtract(1, ordering: .relaxed).newValue
        inFlightGauge.set(now)
    }

    package var inFlight: Int { inFlightCount.load(ordering: .relaxed) }

    /// A WebSocket tunnel opened (the upstream answered 101).
    package func tunnelOpened() {
        tunnelsGauge.set(tunnelCount.add(1, ordering: .relaxed).newValue)
    }

    /// A WebSocket tunnel closed.
    package func tunnelClosed() {
        tunnelsGauge.set(tunnelCount.subtract(1, ordering: .relaxed).newValue)
    }

    /// WebSocket tunnels open now.
    package var openTunnels: Int { tunnelCount.load(ordering: .relaxed) }

    /// A TLS handshake failed.
    package func tlsHandshakeFailed() {
        tlsHandshakeErrors.increment()
    }

    package func reload(succeeded: Bool) {
        (succeeded ? reloadsOK : reloadsFailed).increment()
    }
}

/// One route's `cors_proxy_requests_total` counters (kind × outcome) and its
/// `cors_proxy_request_duration_seconds` timer. Series are created on first use, so
/// /metrics lists only what happened; after that a request costs one short lock and
/// an array index. A reload builds new `RouteMetrics`; the registry hands back the
/// same series for the same labels, so counts carry over.
package final class RouteMetrics: Sendable {
    private struct Handles {
        var counters: [Counter?] = Array(repeating: nil, count: RouteMetrics.slots)
        var timer: Timer?
    }

    /// Distinct `outcome` label values (see `index(of:)`).
    private static let outcomeCount = 7
    private static let slots = 3 * outcomeCount

    package let label: String
    private let owner: ProxyMetrics
    private let handles = NIOLockedValueBox(Handles())

    fileprivate init(label: String, owner: ProxyMetrics) {
        self.label = label
        self.owner = owner
    }

    /// Counts one finished request (and its denial, if it had one) and records its duration.
    package func record(kind: RequestKind, outcome: Outcome, nanoseconds: Int64) {
        let outcomeIndex = Self.index(of: outcome)
        let kindIndex =
            switch kind {
            case .preflight: 0
            case .actual: 1
            case .websocket: 2
            }
        let slot = kindIndex * Self.outcomeCount + outcomeIndex
        let (counter, timer) = handles.withLockedValue { handles in
            let counter: Counter
            if let existing = handles.counters[slot] {
                counter = existing
            } else {
                counter = owner.makeRequestCounter(route: label, kind: kind, outcome: outcome.label)
                handles.counters[slot] = counter
            }
            let timer: Timer
            if let existing = handles.timer {
                timer = existing
            } else {
                timer = owner.makeDurationTimer(route: label)
                handles.timer = timer
            }
            return (counter, timer)
        }
        counter.increment()
        timer.recordNanoseconds(nanoseconds)
        if let denial = outcome.denial { owner.countDenial(route: label, reason: denial.reason) }
    }

    /// One slot per distinct `outcome.label` (`reported` and `unenforced` share one).
    private static func index(of outcome: Outcome) -> Int {
        switch outcome {
        case .allowed: return 0
        case .denied: return 1
        case .reported, .unenforced: return 2
        case .sameOrigin: return 3
        case .noOrigin: return 4
        case .passthrough: return 5
        case .noRoute: return 6
        }
    }
}
