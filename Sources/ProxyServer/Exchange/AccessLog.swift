import CORSPolicy
import Logging
import NIOCore
import ProxyConfig
import ProxyLog
import Synchronization

/// The access log: one line per request, denials included (docs/CONFIG.md, "Log lines").
/// The exchange code hands over the facts of a finished request; this type decides the
/// event and level, builds the record and renders it into the serving loop's buffer.
package final class AccessLog: Sendable {
    /// What the access log needs to know about one finished request.
    package struct Entry: Sendable {
        package var client: String
        package var method: String
        /// The request target as received (path and query).
        package var target: String
        /// The route label (`/api/`, `= /healthz`), `-` when no route matched.
        package var route: String
        package var kind: RequestKind
        package var status: Int
        package var outcome: Outcome
        package var durationNanoseconds: Int64
        /// Every `Origin` line as received (empty lines left out).
        package var origins: [String]
        /// `Access-Control-Request-Method` as received (logged on preflights).
        package var requestMethod: String?
        /// Every `Access-Control-Request-Headers` line as received (logged on preflights).
        package var requestHeaders: [String]
        package var bytesIn: Int64
        package var bytesOut: Int64
        /// The upstream's name, when the request was forwarded.
        package var upstream: String?
        /// Time to the upstream's response head, when forwarded and answered.
        package var upstreamNanoseconds: Int64?
        /// Free text: `client closed`, why the proxy answered itself, …
        package var note: String?

        package init(
            client: String, method: String, target: String, route: String, kind: RequestKind, status: Int,
            outcome: Outcome, durationNanoseconds: Int64, origins: [String] = [], requestMethod: String? = nil,
            requestHeaders: [String] = [], bytesIn: Int64 = 0, bytesOut: Int64 = 0, upstream: String? = nil,
            upstreamNanoseconds: Int64? = nil, note: String? = nil
        ) {
            self.client = client
            self.method = method
            self.target = target
            self.route = route
            self.kind = kind
            self.status = status
            self.outcome = outcome
            self.durationNanoseconds = durationNanoseconds
            self.origins = origins
            self.requestMethod = requestMethod
            self.requestHeaders = requestHeaders
            self.bytesIn = bytesIn
            self.bytesOut = bytesOut
            self.upstream = upstream
            self.upstreamNanoseconds = upstreamNanoseconds
            self.note = note
        }
    }

    package let output: LogOutput
    /// One line buffer per event loop of the serving group, built once: a request looks
    /// its loop up without a lock.
    private let buffers: [ObjectIdentifier: LoopLogBuffer]
    /// Loops outside the serving group (tests), found under a lock.
    private let otherBuffers = Mutex<[ObjectIdentifier: LoopLogBuffer]>([:])

    /// `eventLoops`: the loops that serve requests, each of which gets its line buffer now.
    package init(output: LogOutput, eventLoops: any EventLoopGroup) {
        self.output = output
        var buffers: [ObjectIdentifier: LoopLogBuffer] = [:]
        for loop in eventLoops.makeIterator() {
            buffers[ObjectIdentifier(loop)] = output.makeLoopBuffer(for: loop)
        }
        self.buffers = buffers
    }

    /// The event and level of a request's line: denied and reported requests are `denial`
    /// at `warning` (`info` under `enforce off`), everything else `access` at `info`.
    package static func classify(_ outcome: Outcome) -> (event: AccessRecord.Event, level: Logger.Level) {
        switch outcome {
        case .denied, .reported: return (.denial, .warning)
        case .unenforced: return (.denial, .info)
        case .allowed, .sameOrigin, .noOrigin, .passthrough, .noRoute: return (.access, .info)
        }
    }

    /// Whether a request with this outcome is logged at all at the configured level. Check
    /// it before gathering an `Entry`: below the level nothing is built or rendered.
    @inline(__always)
    package func isEnabled(for outcome: Outcome) -> Bool {
        output.isEnabled(Self.classify(outcome).level)
    }

    /// Logs a finished request into `eventLoop`'s buffer. Call it on that loop.
    package func log(_ entry: Entry, on eventLoop: any EventLoop) {
        guard let record = record(entry) else { return }
        buffer(for: eventLoop).append(record)
    }

    /// The record of `entry`, or nil when its level is not logged.
    package func record(_ entry: Entry) -> AccessRecord? {
        let (event, level) = Self.classify(entry.outcome)
        guard output.isEnabled(level) else { return nil }
        let denial = entry.outcome.denial
        let preflight = entry.kind == .preflight
        return AccessRecord(
            event: event, level: level, client: entry.client, method: entry.method, target: entry.target,
            route: entry.route, kind: entry.kind.rawValue, status: entry.status, outcome: entry.outcome.label,
            durationNanoseconds: entry.durationNanoseconds, origin: Self.joined(entry.origins),
            reason: denial?.reason.rawValue, detail: denial?.detail,
            requestMethod: preflight ? entry.requestMethod : nil,
            requestHeaders: preflight ? Self.joined(entry.requestHeaders) : nil, bytesIn: entry.bytesIn,
            bytesOut: entry.bytesOut, upstream: entry.upstream, upstreamNanoseconds: entry.upstreamNanoseconds,
            note: entry.note)
    }

    private func buffer(for eventLoop: any EventLoop) -> LoopLogBuffer {
        let key = ObjectIdentifier(eventLoop)
        if let buffer = buffers[key] { return buffer }
        return otherBuffers.withLock { table in
            if let buffer = table[key] { return buffer }
            let buffer = output.makeLoopBuffer(for: eventLoop)
            table[key] = buffer
            return buffer
        }
    }

    /// One line as it was sent; several lines as one comma list (allocates only then).
    private static func joined(_ lines: [String]) -> String? {
        switch lines.count {
        case 0: return nil
        case 1: return lines[0]
        default: return lines.joined(separator: ", ")
        }
    }
}

extension LogFormat {
    /// The conf's `log_format`.
    package init(_ format: ProxyConfiguration.LogFormat) {
        switch format {
        case .text: self = .text
        case .json: self = .json
        }
    }
}
