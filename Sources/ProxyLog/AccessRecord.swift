import Logging

/// One request, as its single log line records it. The fields and their order are the
/// log's contract (docs/CONFIG.md, "Log lines"): `cors-proxy suggest` and users' log
/// pipelines read them.
package struct AccessRecord: Sendable {
    /// `denial` for a denied or reported request, `access` otherwise.
    package enum Event: String, Sendable {
        case access, denial
    }

    package var event: Event
    package var level: Logger.Level
    /// The client's IP address.
    package var client: String
    package var method: String
    /// The request target as received (path and query).
    package var target: String
    /// The route pattern as written (`/api/`, `= /healthz`), `-` when none matched.
    package var route: String
    /// `preflight`, `actual` or `websocket`.
    package var kind: String
    package var status: Int
    /// The metrics' outcome label (`allowed`, `denied`, `reported`, …).
    package var outcome: String
    package var durationNanoseconds: Int64
    /// The `Origin` header as sent, when one was.
    package var origin: String?
    /// The reason code, on denied and reported requests.
    package var reason: String?
    /// The reason in words, on denied and reported requests.
    package var detail: String?
    /// `Access-Control-Request-Method`, on preflights, as received.
    package var requestMethod: String?
    /// `Access-Control-Request-Headers`, on preflights, as received (lines joined by `, `).
    package var requestHeaders: String?
    package var bytesIn: Int64
    package var bytesOut: Int64
    /// The upstream's name, when the request was forwarded.
    package var upstream: String?
    /// Time to the upstream's response head, when forwarded and answered.
    package var upstreamNanoseconds: Int64?
    /// Free text, e.g. `client closed`.
    package var note: String?

    package init(
        event: Event, level: Logger.Level, client: String, method: String, target: String, route: String,
        kind: String, status: Int, outcome: String, durationNanoseconds: Int64, origin: String? = nil,
        reason: String? = nil, detail: String? = nil, requestMethod: String? = nil, requestHeaders: String? = nil,
        bytesIn: Int64 = 0, bytesOut: Int64 = 0, upstream: String? = nil, upstreamNanoseconds: Int64? = nil,
        note: String? = nil
    ) {
        self.event = event
        self.level = level
        self.client = client
        self.method = method
        self.target = target
        self.route = route
        self.kind = kind
        self.status = status
        self.outcome = outcome
        self.durationNanoseconds = durationNanoseconds
        self.origin = origin
        self.reason = reason
        self.detail = detail
        self.requestMethod = requestMethod
        self.requestHeaders = requestHeaders
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.upstream = upstream
        self.upstreamNanoseconds = upstreamNanoseconds
        self.note = note
    }
}

extension AccessRecord {
    /// Renders the line (newline included) into `buffer`, stamped with `clock`'s current
    /// time. Straight into bytes: no dictionary, no interpolation, no intermediate String.
    package func render(_ format: LogFormat, into buffer: LineBuffer, clock: inout TimestampFormatter) {
        let (seconds, nanoseconds) = TimestampFormatter.now()
        render(format, into: buffer, clock: &clock, seconds: seconds, nanoseconds: nanoseconds)
    }

    /// Renders the line at a given time (tests use fixed times).
    package func render(
        _ format: LogFormat, into buffer: LineBuffer, clock: inout TimestampFormatter, seconds: Int64, nanoseconds: Int
    ) {
        var line = FieldWriter(format: format, buffer: buffer)
        line.begin(clock: &clock, seconds: seconds, nanoseconds: nanoseconds, level: level)
        line.event(event == .access ? "access" : "denial")
        line.string(" client=", "\",\"client\":\"", client)
        line.string(" method=", "\",\"method\":\"", method)
        line.string(" target=", "\",\"target\":\"", target)
        line.string(" route=", "\",\"route\":\"", route)
        line.string(" kind=", "\",\"kind\":\"", kind)
        line.integer(" status=", "\",\"status\":", Int64(status))
        line.string(" outcome=", "\",\"outcome\":\"", outcome)
        line.milliseconds(" duration_ms=", "\",\"duration_ms\":", durationNanoseconds)
        if let origin { line.string(" origin=", "\",\"origin\":\"", origin) }
        if let reason { line.string(" reason=", "\",\"reason\":\"", reason) }
        if let detail { line.string(" detail=", "\",\"detail\":\"", detail) }
        if let requestMethod { line.string(" request_method=", "\",\"request_method\":\"", requestMethod) }
        if let requestHeaders { line.string(" request_headers=", "\",\"request_headers\":\"", requestHeaders) }
        line.integer(" bytes_in=", "\",\"bytes_in\":", bytesIn)
        line.integer(" bytes_out=", "\",\"bytes_out\":", bytesOut)
        if let upstream { line.string(" upstream=", "\",\"upstream\":\"", upstream) }
        if let upstreamNanoseconds { line.milliseconds(" upstream_ms=", "\",\"upstream_ms\":", upstreamNanoseconds) }
        if let note { line.string(" note=", "\",\"note\":\"", note) }
        line.end()
    }
}

/// Writes one line's fields in either format. Keys are static (the contract's names);
/// values are escaped by the format's rules.
struct FieldWriter {
    let format: LogFormat
    let buffer: LineBuffer
    /// JSON: the last value was a string whose closing quote is not written yet. JSON keys
    /// are spelled with that quote in front (`","name":"`), so the quote and the next key
    /// are one copy, and a field costs no more than in text.
    private var quoteOpen = false

    init(format: LogFormat, buffer: LineBuffer) {
        self.format = format
        self.buffer = buffer
    }

    /// `TIME LEVEL` or `{"time":"…","level":"…`.
    mutating func begin(clock: inout TimestampFormatter, seconds: Int64, nanoseconds: Int, level: Logger.Level) {
        switch format {
        case .text:
            clock.append(seconds: seconds, nanoseconds: nanoseconds, to: buffer)
            buffer.append(UInt8(ascii: " "))
            buffer.append(level.lineName)
        case .json:
            buffer.append("{\"time\":\"")
            clock.append(seconds: seconds, nanoseconds: nanoseconds, to: buffer)
            buffer.append("\",\"level\":\"")
            buffer.append(level.lineName)
            quoteOpen = true
        }
    }

    /// A JSON key spelled with the previous string's closing quote in front.
    @inline(__always)
    private mutating func jsonKey(_ key: StaticString) {
        key.withUTF8Buffer { bytes in
            buffer.append(quoteOpen ? bytes : UnsafeBufferPointer(rebasing: bytes.dropFirst()))
        }
    }

    /// Closes a pending JSON string before something that is not a static key.
    @inline(__always)
    private mutating func closeQuote() {
        if quoteOpen { buffer.append(UInt8(ascii: "\"")) }
        quoteOpen = false
    }

    /// The event name: positional in text, `"event":"…"` in JSON.
    mutating func event(_ name: StaticString) {
        switch format {
        case .text:
            buffer.append(UInt8(ascii: " "))
            buffer.append(name)
        case .json:
            jsonKey("\",\"event\":\"")
            buffer.append(name)
            quoteOpen = true
        }
    }

    /// An event name that is not a constant (library messages), sanitised like a key.
    mutating func event(dynamic name: String) {
        switch format {
        case .text:
            buffer.append(UInt8(ascii: " "))
            buffer.appendSanitizedKey(name)
        case .json:
            jsonKey("\",\"event\":\"")
            buffer.appendSanitizedKey(name)
            quoteOpen = true
        }
    }

    /// A string field: `text` is ` name=`, `json` is `","name":"`.
    mutating func string(_ text: StaticString, _ json: StaticString, _ value: String) {
        switch format {
        case .text:
            buffer.append(text)
            buffer.appendTextValue(value)
        case .json:
            jsonKey(json)
            buffer.appendJSONStringBody(value)
            quoteOpen = true
        }
    }

    /// A field whose key is not a constant (library metadata).
    mutating func string(dynamicKey name: String, _ value: String) {
        switch format {
        case .text:
            buffer.append(UInt8(ascii: " "))
            buffer.appendSanitizedKey(name)
            buffer.append(UInt8(ascii: "="))
            buffer.appendTextValue(value)
        case .json:
            closeQuote()
            buffer.append(",\"")
            buffer.appendSanitizedKey(name)
            buffer.append("\":\"")
            buffer.appendJSONStringBody(value)
            quoteOpen = true
        }
    }

    /// A number field: `text` is ` name=`, `json` is `","name":`.
    mutating func integer(_ text: StaticString, _ json: StaticString, _ value: Int64) {
        if format == .text { buffer.append(text) } else { jsonKey(json) }
        quoteOpen = false
        buffer.appendDecimal(value)
    }

    /// Milliseconds with three decimals, a number in both formats.
    mutating func milliseconds(_ text: StaticString, _ json: StaticString, _ nanoseconds: Int64) {
        if format == .text { buffer.append(text) } else { jsonKey(json) }
        quoteOpen = false
        buffer.appendMilliseconds(nanoseconds: nanoseconds)
    }

    /// The end of the line: `\n`, or `}\n`.
    mutating func end() {
        if format == .json {
            closeQuote()
            buffer.append(UInt8(ascii: "}"))
        }
        buffer.append(UInt8(ascii: "\n"))
    }
}
