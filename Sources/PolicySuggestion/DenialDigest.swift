import ProxyLog

/// The denial lines of a proxy log, boiled down to the distinct kinds of denied request
/// with how often and when each was seen. Memory grows with the number of distinct
/// requests, not with the length of the log.
package struct DenialDigest: Sendable {
    /// One kind of denied (or reported) request, as its log line describes it.
    package struct Shape: Hashable, Sendable {
        /// The route label (`/api/`, `= /healthz`).
        package var route: String
        /// `preflight`, `actual` or `websocket`.
        package var kind: String
        package var method: String
        /// The `Origin` header as sent.
        package var origin: String?
        /// The reason code.
        package var reason: String
        /// The reason in words.
        package var detail: String
        /// `Access-Control-Request-Method`, on preflights.
        package var requestMethod: String?
        /// `Access-Control-Request-Headers`, on preflights.
        package var requestHeaders: String?

        package init(
            route: String, kind: String, method: String, origin: String?, reason: String, detail: String = "",
            requestMethod: String? = nil, requestHeaders: String? = nil
        ) {
            self.route = route
            self.kind = kind
            self.method = method
            self.origin = origin
            self.reason = reason
            self.detail = detail
            self.requestMethod = requestMethod
            self.requestHeaders = requestHeaders
        }
    }

    /// How often, and first and last when (the log's RFC 3339 UTC timestamps, which sort
    /// as text).
    package struct Seen: Sendable, Equatable {
        package var count: Int
        package var first: String
        package var last: String

        package init(count: Int, first: String, last: String) {
            self.count = count
            self.first = first
            self.last = last
        }

        package mutating func merge(_ other: Seen) {
            count += other.count
            if other.first < first { first = other.first }
            if other.last > last { last = other.last }
        }
    }

    package private(set) var shapes: [Shape: Seen] = [:]
    /// Every line read, blank ones included.
    package private(set) var linesRead = 0
    /// Lines that are not cors-proxy's (another program's, truncated, garbled).
    package private(set) var skippedLines = 0
    package private(set) var deniedLines = 0
    package private(set) var reportedLines = 0

    package init() {}

    package var denialLines: Int { deniedLines + reportedLines }

    /// Reads one log line, text or JSON. Blank lines are neither the proxy's nor skipped.
    package mutating func add<S: StringProtocol>(line: S) {
        linesRead += 1
        guard line.contains(where: { !$0.isWhitespace }) else { return }
        guard let parsed = LogLineParser.parse(line) else {
            skippedLines += 1
            return
        }
        guard parsed.event == "denial" else { return }
        guard let route = parsed["route"], let kind = parsed["kind"], let method = parsed["method"],
            let reason = parsed["reason"], let outcome = parsed["outcome"]
        else {
            // A denial line without its facts is not one the proxy wrote.
            skippedLines += 1
            return
        }
        switch outcome {
        case "denied": deniedLines += 1
        case "reported": reportedLines += 1
        default:
            skippedLines += 1
            return
        }
        let shape = Shape(
            route: route, kind: kind, method: method, origin: parsed["origin"], reason: reason,
            detail: parsed["detail"] ?? "", requestMethod: parsed["request_method"],
            requestHeaders: parsed["request_headers"])
        let seen = Seen(count: 1, first: parsed.time, last: parsed.time)
        if shapes[shape] == nil {
            shapes[shape] = seen
        } else {
            shapes[shape]?.merge(seen)
        }
    }
}
