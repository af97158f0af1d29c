import CORSPolicy
import Logging
import NIOCore

/// The per-request log lines: one access line per finished exchange (`info`), and one line
/// per denial with its reason code and words (`info`; `warning` under `enforce report`).
package struct AccessLog: Sendable {
    private let logger: Logger

    package init(logger: Logger) {
        self.logger = logger
    }

    /// A denied or reported request.
    func denial(_ denial: Denial, route: String, facts: RequestFacts, status: Int?, reported: Bool) {
        var metadata: Logger.Metadata = [
            "cors.route": "\(route)", "cors.origin": "\(facts.origins.joined(separator: " | "))",
            "cors.reason": "\(denial.reason.rawValue)", "cors.detail": "\(denial.detail)",
        ]
        if let status { metadata["http.status"] = "\(status)" }
        if reported {
            logger.warning("request not allowed, forwarded (enforce report)", metadata: metadata)
        } else {
            logger.info("request denied", metadata: metadata)
        }
    }

    /// A finished exchange.
    func access(_ exchange: ExchangeRecord, status: Int, nanoseconds: Int64) {
        guard logger.logLevel <= .info else { return }
        var metadata: Logger.Metadata = [
            "cors.route": "\(exchange.routeLabel)", "http.method": "\(exchange.method)",
            "http.target": "\(exchange.target)", "http.status": "\(status)",
            "cors.outcome": "\(exchange.outcome.label)", "bytes.in": "\(exchange.bytesIn)",
            "bytes.out": "\(exchange.bytesOut)", "duration.ms": "\(Double(nanoseconds) / 1_000_000)",
        ]
        if let origin = exchange.origin { metadata["cors.origin"] = "\(origin)" }
        if let s = exchange.upstreamStarted, let h = exchange.upstreamHeadAt {
            metadata["upstream.ms"] = "\(Double((h - s).nanoseconds) / 1_000_000)"
        }
        if let note = exchange.note { metadata["cors.detail"] = "\(note)" }
        logger.info("access", metadata: metadata)
    }
}
