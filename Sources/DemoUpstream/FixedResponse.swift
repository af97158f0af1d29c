import NIOCore
import NIOHTTP1

/// A response rendered once at start-up: status, headers (with `Content-Length`) and body.
/// Per request only `X-Request-Id` (and `Connection` when needed) is added.
struct FixedResponse: Sendable {
    let status: HTTPResponseStatus
    let headers: HTTPHeaders
    let body: ByteBuffer

    init(
        _ status: HTTPResponseStatus = .ok,
        contentType: String?,
        body: some Sequence<UInt8>,
        headers extra: [(String, String)] = []
    ) {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        buffer.writeBytes(Array(body))
        var headers = HTTPHeaders()
        if let contentType { headers.add(name: "Content-Type", value: contentType) }
        headers.add(name: "Content-Length", value: String(buffer.readableBytes))
        for (name, value) in extra { headers.add(name: name, value: value) }
        self.status = status
        self.headers = headers
        self.body = buffer
    }

    init(_ status: HTTPResponseStatus = .ok, json: String, headers extra: [(String, String)] = []) {
        self.init(status, contentType: "application/json", body: Array((json + "\n").utf8), headers: extra)
    }
}

/// Every fixed body the demo serves.
enum Fixed {
    static let healthz = FixedResponse(contentType: "text/plain; charset=utf-8", body: Array("ok".utf8))

    static let items = FixedResponse(
        json:
            #"[{"id":1,"name":"apple","price":3},{"id":2,"name":"banana","price":1},{"id":3,"name":"cherry","price":7}]"#,
        headers: [
            ("X-Internal-Trace", "abc"),
            // A misconfigured upstream: the proxy must strip this.
            ("Access-Control-Allow-Origin", "*"),
        ])

    static let headersWithCORS = FixedResponse(
        json: #"{"upstream_cors":true}"#,
        headers: [
            ("Access-Control-Allow-Origin", "https://upstream.example"),
            ("Access-Control-Allow-Credentials", "true"),
            ("Vary", "Accept-Encoding"),
        ])

    static let varyStar = FixedResponse(json: #"{"vary":"*"}"#, headers: [("Vary", "*")])

    /// gzip (RFC 1952, mtime 0) of the 11 bytes "hello gzip\n".
    static let gzipBytes: [UInt8] = [
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57,
        0x48, 0xaf, 0xca, 0x2c, 0xe0, 0x02, 0x00, 0x39, 0x7c, 0x63, 0x56, 0x0b, 0x00, 0x00, 0x00,
    ]
    static let gzip = FixedResponse(
        contentType: "text/plain; charset=utf-8", body: gzipBytes,
        headers: [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")])

    static let setCookie = FixedResponse(
        json: #"{"cookies_set":2}"#,
        headers: [
            ("Set-Cookie", "session=abc123; Path=/; HttpOnly; SameSite=None; Secure"),
            ("Set-Cookie", "theme=dark; Path=/; Max-Age=3600"),
        ])

    static let timingAllowed = FixedResponse(
        json: #"{"timing_allowed":true}"#, headers: [("Timing-Allow-Origin", "*")])

    static let reset = FixedResponse(json: #"{"reset":true}"#)
}
