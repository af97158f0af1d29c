import NIOConcurrencyHelpers
import CORSPolicy
import CurlBridge
import CoreMetrics
import Synchronization

/// SPEC's metrics, created once per label set and cached: the hot path does a
/// dictionary lookup under a lock held only for that lookup.
package final class ProxyMetrics: Sendable {
    private struct RequestKey: Hashable {
        var route: String
        var kind: RequestKind
        var outcome: String
    }
    private struct DenialKey: Hashable {
        var route: String
        var reason: DenialReason
    }
    private struct UpstreamKey: Hashable {
        var upstream: String
        var kind: UpstreamError.Kind
    }

    private let factory: any MetricsFactory
    private let requests = NIOLockedValueBox<[RequestKey: Counter]>([:])
    private let denials = NIOLockedValueBox<[DenialKey: Counter]>([:])
    private let upstreamErrors = NIOLockedValueBox<[UpstreamKey: Counter]>([:])
    private let durations = NIOLockedValueBox<[String: Timer]>([:])
    private let inFlightGauge: Meter
    private let inFlightCount = Atomic<Int>(0)
    private let reloadsOK: Counter
    private let reloadsFailed: Counter

    package init(factory: any MetricsFactory) {
        self.factory = factory
        self.inFlightGauge = Meter(label: "cors_proxy_in_flight_requests", dimensions: [], factory: factory)
        self.reloadsOK = Counter(label: "cors_proxy_reloads_total", dimensions: [("outcome", "ok")], factory: factory)
        self.reloadsFailed = Counter(
            label: "cors_proxy_reloads_total", dimensions: [("outcome", "error")], factory: factory)
    }

    /// Counts one request, and its denial if it had one (denied and reported alike).
    package func request(route: String, kind: RequestKind, outcome: Outcome) {
        let key = RequestKey(route: route, kind: kind, outcome: outcome.label)
        let counter = requests.withLockedValue { table in
            if let c = table[key] { return c }
            let c = Counter(
                label: "cors_proxy_requests_total",
                dimensions: [("route", route), ("kind", kind.rawValue), ("outcome", key.outcome)], factory: factory)
            table[key] = c
            return c
        }
        counter.increment()
        if let denial = outcome.denial {
            let dkey = DenialKey(route: route, reason: denial.reason)
            let d = denials.withLockedValue { table in
                if let c = table[dkey] { return c }
                let c = Counter(
                    label: "cors_proxy_denials_total", dimensions: [("route", route), ("reason", denial.reason.rawValue)],
                    factory: factory)
                table[dkey] = c
                return c
            }
            d.increment()
        }
    }

    package func upstreamError(upstream: String, kind: UpstreamError.Kind) {
        let key = UpstreamKey(upstream: upstream, kind: kind)
        let counter = upstreamErrors.withLockedValue { table in
            if let c = table[key] { return c }
            let c = Counter(
                label: "cors_proxy_upstream_errors_total", dimensions: [("upstream", upstream), ("kind", kind.rawValue)],
                factory: factory)
            table[key] = c
            return c
        }
        counter.increment()
    }

    package func duration(route: String, nanoseconds: Int64) {
        let timer = durations.withLockedValue { table in
            if let t = table[route] { return t }
            let t = Timer(label: "cors_proxy_request_duration_seconds", dimensions: [("route", route)], factory: factory)
            table[route] = t
            return t
        }
        timer.recordNanoseconds(nanoseconds)
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

    package func reload(succeeded: Bool) {
        (succeeded ? reloadsOK : reloadsFailed).increment()
    }
}
