import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// docs/DESIGN.md "Request limits" under hostile input, against the running proxy (issue 6).
///
/// A seeded generator makes malformed, truncated, oversized and odd request heads and bodies;
/// each goes out on a fresh connection. The answer must be a clean 400/413/431 (or a valid
/// response for an input that is actually valid) or a closed connection: never a hang (every
/// read is bounded) and never a crash (the proxy is checked to answer every 50 inputs and at
/// the end). A head the parser must refuse never reaches the upstream (checked through the
/// upstream's `/__requests` log, by a marker in the target).
///
/// `HTTP_FUZZ_SEED` (default 6) and `HTTP_FUZZ_CASES` (default 1500 random inputs) change the run.
@Suite(.serialized)
final class HTTPFuzzTests {
    let upstream: Upstream
    let proxy: Proxy

    init() throws {
        upstream = try Upstream()
        proxy = try Proxy(conf: standardConf(upstream: upstream.url))
    }

    // MARK: - The oracle

    enum Expectation: CustomStringConvertible {
        /// 400/413/431 then a close, or a close without an answer.
        case reject
        /// A response the upstream or the CORS layer made (2xx–4xx but not 400/431, or 501).
        case valid
        /// One valid response, then the rest of the bytes are refused (400/431 or a close).
        case validThenReject
        /// Either of the above; when the proxy waits for more, a FIN from the client must end it.
        case either

        var description: String {
            switch self {
            case .reject: "reject"
            case .valid: "valid"
            case .validThenReject: "valid-then-reject"
            case .either: "either"
            }
        }
    }

    struct FuzzCase {
        var name: String
        var bytes: [UInt8]
        var expect: Expectation
        /// false: the bytes stop short of a complete request; the client half-closes after sending.
        var complete: Bool = true
        /// A head the parser refuses: the upstream must never see a target containing this marker.
        var marker: String? = nil
        /// The upstream itself may refuse what the proxy (rightly) passes on, e.g. an unknown
        /// method: then a 502, or the upstream's own 400, is a fine answer too.
        var upstreamMayRefuse: Bool = false
    }

    static let rejectStatuses: Set<Int> = [400, 413, 431]

    static func isValidStatus(_ s: Int) -> Bool { (200..<500).contains(s) && s != 400 && s != 431 || s == 501 }

    struct Tally {
        var cases = 0
        var valid = 0
        var rejected = 0
        var closed = 0
        var finNeeded = 0
        var bytes = 0
    }

    /// Runs one input on a fresh connection; returns a failure description, or nil.
    func run(_ c: FuzzCase, tally: inout Tally) -> String? {
        tally.cases += 1
        tally.bytes += c.bytes.count
        // A shorter first read for inputs that may legitimately leave the proxy waiting.
        let client = HTTPClient(port: proxy.port, timeoutSeconds: c.expect == .either || !c.complete ? 1 : 5)
        defer { client.close() }
        client.sendAllowingClose(c.bytes)
        if !c.complete { client.shutdownWrite() }
        var statuses: [Int] = []
        var proxyRefused = false
        var closed = false
        var waited = false
        let wanted = c.expect == .validThenReject ? 2 : 1
        var attempts = 0
        while statuses.count < wanted && attempts < 8 {
            attempts += 1
            do {
                let r = try client.readResponse()
                // The proxy's own refusals say so in their text body; an upstream's 400 does not.
                let text = r.bodyText
                let mine =
                    text.hasPrefix("malformed request") || text.hasPrefix("request head too large")
                    || text.hasPrefix("413 ")
                if Self.rejectStatuses.contains(r.status) && !mine && c.upstreamMayRefuse {
                    statuses.append(502)  // counted as the upstream refusing
                    break
                }
                statuses.append(r.status)
                if Self.rejectStatuses.contains(r.status) {
                    proxyRefused = true
                    break
                }
                if r.value("Connection")?.lowercased() == "close" { break }
                if c.expect == .validThenReject && statuses.count == 1 { client.shutdownWrite() }
            } catch is ConnectionClosed {
                closed = true
                break
            } catch is TestTimeout {
                // Still waiting for bytes that will never come: allowed only where the input
                // may be incomplete; then the client's FIN must end the exchange.
                if c.complete && c.expect != .either {
                    return "\(c.name): no answer within 5 s (hang); sent \(c.bytes.count) bytes"
                }
                if waited { return "\(c.name): no close within 1 s after the client's FIN (hang)" }
                waited = true
                tally.finNeeded += 1
                client.shutdownWrite()
            } catch {
                closed = true
                break
            }
        }
        // A refusal closes the connection (docs/DESIGN.md, "Request limits").
        if proxyRefused, let last = statuses.last {
            var gone = false
            for _ in 0..<5 where !gone { gone = client.waitForClose() }
            if !gone { return "\(c.name): \(last) but the connection stayed open" }
        }
        if closed || statuses.isEmpty { tally.closed += 1 }
        switch c.expect {
        case .reject:
            if let bad = statuses.first(where: { !Self.rejectStatuses.contains($0) }) {
                return "\(c.name): expected 400/413/431 or a close, got \(bad)"
            }
            tally.rejected += statuses.isEmpty ? 0 : 1
        case .valid:
            guard let first = statuses.first else { return "\(c.name): a valid request got no response (closed)" }
            if !Self.isValidStatus(first) && !(c.upstreamMayRefuse && first == 502) {
                return "\(c.name): a valid request got \(first)"
            }
            tally.valid += 1
        case .validThenReject:
            guard let first = statuses.first else { return "\(c.name): the valid request got no response" }
            if !Self.isValidStatus(first) { return "\(c.name): the valid request got \(first)" }
            if statuses.count > 1, !Self.rejectStatuses.contains(statuses[1]) {
                return "\(c.name): the garbage after a valid request got \(statuses[1])"
            }
            tally.valid += 1
        case .either:
            if let bad = statuses.first(where: {
                !Self.isValidStatus($0) && !Self.rejectStatuses.contains($0) && !(c.upstreamMayRefuse && $0 == 502)
            }) {
                return "\(c.name): got \(bad)"
            }
            if let s = statuses.first {
                if Self.rejectStatuses.contains(s) { tally.rejected += 1 } else { tally.valid += 1 }
            }
        }
        return nil
    }

    /// The proxy process is running and answers a plain request.
    func proxyAnswers() -> Bool {
        guard proxy.process.process.isRunning else { return false }
        return (try? HTTPClient(port: proxy.port, timeoutSeconds: 5).request("GET", "/api/items").status) == 200
    }

    // MARK: - The catalogue: one input per named case, exact expectations

    static func text(_ s: String) -> [UInt8] { Array(s.utf8) }

    static func catalogue() -> [FuzzCase] {
        var cases: [FuzzCase] = []
        func add(_ name: String, _ raw: [UInt8], _ expect: Expectation, complete: Bool = true, marker: Bool = false) {
            let id = "cat-\(cases.count)"
            var bytes = raw
            if marker {
                // The target "/api/echo/M" gets the case's marker.
                let s = String(decoding: bytes, as: UTF8.self).replacingOccurrences(
                    of: "/api/echo/M", with: "/api/echo/\(id)")
                bytes = Array(s.utf8)
            }
            cases.append(
                FuzzCase(
                    name: "\(id) \(name)", bytes: bytes, expect: expect, complete: complete, marker: marker ? id : nil))
        }
        func reject(_ name: String, _ s: String) { add(name, text(s), .reject, marker: true) }
        func rejectBytes(_ name: String, _ b: [UInt8]) { add(name, b, .reject, marker: true) }
        func valid(_ name: String, _ s: String) { add(name, text(s), .valid) }
        func validUpstreamMayRefuse(_ name: String, _ s: String) {
            add(name, text(s), .valid)
            cases[cases.count - 1].upstreamMayRefuse = true
        }
        let h = "Host: 127.0.0.1\r\n"

        // Valid references (the oracle itself must accept these).
        valid("plain GET", "GET /api/echo/ok HTTP/1.1\r\n\(h)\r\n")
        valid("leading CRLF tolerated", "\r\nGET /api/echo/ok HTTP/1.1\r\n\(h)\r\n")
        valid("HTTP/1.0 without Host", "GET /api/echo/ok HTTP/1.0\r\n\r\n")
        valid(
            "chunked body",
            "POST /api/echo/ok HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        valid(
            "uppercase CHUNKED",
            "POST /api/echo/ok HTTP/1.1\r\n\(h)Transfer-Encoding: CHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        valid(
            "TE with tab OWS",
            "POST /api/echo/ok HTTP/1.1\r\n\(h)Transfer-Encoding:\t chunked \t\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        valid(
            "chunk extensions",
            "POST /api/echo/ok HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n5;a=b;c=\"d e\"\r\nhello\r\n0;x\r\n\r\n"
        )
        valid(
            "chunk size BWS then ext",
            "POST /api/echo/ok HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n5 ;a=b\r\nhello\r\n0\r\n\r\n")
        valid(
            "uppercase hex chunk",
            "POST /api/echo/ok HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n")
        valid(
            "leading-zero chunk",
            "POST /api/echo/ok HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n0005\r\nhello\r\n0\r\n\r\n")
        valid(
            "trailers",
            "POST /api/echo/ok HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n"
        )
        valid(
            "same Content-Length twice",
            "POST /api/echo/ok HTTP/1.1\r\n\(h)Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello")
        valid(
            "Content-Length list of equal values", "POST /api/echo/ok HTTP/1.1\r\n\(h)Content-Length: 5, 5\r\n\r\nhello"
        )
        valid(
            "non-ASCII origin (denied, 403)",
            "GET /api/echo/ok HTTP/1.1\r\n\(h)Origin: https://bücher.example.com\r\n\r\n")
        valid("punycode origin", "GET /api/echo/ok HTTP/1.1\r\n\(h)Origin: https://xn--bcher-kva.example.org\r\n\r\n")
        add(
            "Latin-1 origin bytes",
            text("GET /api/echo/ok HTTP/1.1\r\n\(h)Origin: https://") + [0xE9, 0xE8] + text(".example.org\r\n\r\n"),
            .valid)
        valid(
            "Expect 100-continue",
            "POST /api/echo/ok HTTP/1.1\r\n\(h)Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello")
        valid(
            "2000 small headers (under 32 KiB)",
            "GET /api/echo/ok HTTP/1.1\r\n\(h)" + String(repeating: "X-H: 1\r\n", count: 2000) + "\r\n")
        validUpstreamMayRefuse("lowercase method token", "get /api/echo/ok HTTP/1.1\r\n\(h)\r\n")
        validUpstreamMayRefuse("odd method token", "M-SEARCH /api/echo/ok HTTP/1.1\r\n\(h)\r\n")
        valid(
            "h2c upgrade (501 on a CORS route)",
            "GET /api/echo/ok HTTP/1.1\r\n\(h)Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
        // /api/echo answers a WebSocket handshake with a 200 (no 101): an ordinary response.
        valid(
            "websocket handshake answered without 101",
            "GET /api/echo/ok HTTP/1.1\r\n\(h)Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        valid("empty header value", "GET /api/echo/ok HTTP/1.1\r\n\(h)X-Empty:\r\n\r\n")
        valid("Connection names Host", "GET /api/echo/ok HTTP/1.1\r\n\(h)Connection: host, x-forwarded-for\r\n\r\n")

        // Request line.
        reject("empty method", " /api/echo/M HTTP/1.1\r\n\(h)\r\n")
        reject("space in method", "G ET /api/echo/M HTTP/1.1\r\n\(h)\r\n")
        reject("paren in method", "GE(T /api/echo/M HTTP/1.1\r\n\(h)\r\n")
        rejectBytes("NUL in method", text("GE") + [0] + text("T /api/echo/M HTTP/1.1\r\n\(h)\r\n"))
        rejectBytes("high byte in method", [0xC3, 0x89] + text("GET /api/echo/M HTTP/1.1\r\n\(h)\r\n"))
        reject("tab after method", "GET\t/api/echo/M HTTP/1.1\r\n\(h)\r\n")
        reject("asterisk-form", "OPTIONS * HTTP/1.1\r\n\(h)\r\n")
        reject("absolute-form", "GET http://127.0.0.1/api/echo/M HTTP/1.1\r\n\(h)\r\n")
        reject("relative target", "GET api/echo/M HTTP/1.1\r\n\(h)\r\n")
        reject("two spaces", "GET  /api/echo/M HTTP/1.1\r\n\(h)\r\n")
        reject("space in target", "GET /api/echo/M x HTTP/1.1\r\n\(h)\r\n")
        rejectBytes("DEL in target", text("GET /api/echo/M") + [0x7F] + text(" HTTP/1.1\r\n\(h)\r\n"))
        rejectBytes("UTF-8 in target", text("GET /api/echo/M") + [0xC3, 0xA9] + text(" HTTP/1.1\r\n\(h)\r\n"))
        reject("HTTP/2.0", "GET /api/echo/M HTTP/2.0\r\n\(h)\r\n")
        reject("lowercase version", "GET /api/echo/M http/1.1\r\n\(h)\r\n")
        reject("HTTP/1.10", "GET /api/echo/M HTTP/1.10\r\n\(h)\r\n")
        reject("trailing space after version", "GET /api/echo/M HTTP/1.1 \r\n\(h)\r\n")
        reject("no version", "GET /api/echo/M\r\n\(h)\r\n")
        reject("HTTP/1.1 without Host", "GET /api/echo/M HTTP/1.1\r\n\r\n")
        reject("two Hosts", "GET /api/echo/M HTTP/1.1\r\n\(h)Host: other\r\n\r\n")
        add(
            "request line of 40 KiB (431)",
            text("GET /api/echo/" + String(repeating: "a", count: 40 << 10) + " HTTP/1.1\r\n\(h)\r\n"), .reject)

        // Line breaks, control bytes, obs-fold.
        reject("bare LF line ends", "GET /api/echo/M HTTP/1.1\n\(h.replacingOccurrences(of: "\r\n", with: "\n"))\n")
        reject("bare LF in a header", "GET /api/echo/M HTTP/1.1\r\n\(h)X-A: 1\nX-B: 2\r\n\r\n")
        reject("bare CR in a header", "GET /api/echo/M HTTP/1.1\r\n\(h)X-A: 1\rX-B: 2\r\n\r\n")
        reject("bare CR line end", "GET /api/echo/M HTTP/1.1\r\(h)\r\n")
        reject("CR CR LF", "GET /api/echo/M HTTP/1.1\r\r\n\(h)\r\n")
        reject("head ends in LF LF", "GET /api/echo/M HTTP/1.1\r\n\(h)\n\n")
        rejectBytes("NUL in a header value", text("GET /api/echo/M HTTP/1.1\r\n\(h)X-A: a") + [0] + text("b\r\n\r\n"))
        rejectBytes("NUL in a header name", text("GET /api/echo/M HTTP/1.1\r\n\(h)X-") + [0] + text("A: b\r\n\r\n"))
        rejectBytes("SOH in a header value", text("GET /api/echo/M HTTP/1.1\r\n\(h)X-A: a") + [1] + text("b\r\n\r\n"))
        rejectBytes("DEL in a header value", text("GET /api/echo/M HTTP/1.1\r\n\(h)X-A: a") + [0x7F] + text("\r\n\r\n"))
        rejectBytes(
            "VT before chunked",
            text("POST /api/echo/M HTTP/1.1\r\n\(h)Transfer-Encoding: ") + [0x0B] + text("chunked\r\n\r\n0\r\n\r\n"))
        rejectBytes("NUL in the target", text("GET /api/echo/M") + [0] + text(" HTTP/1.1\r\n\(h)\r\n"))
        reject("obs-fold", "GET /api/echo/M HTTP/1.1\r\n\(h)X-A: a\r\n b\r\n\r\n")
        reject("obs-fold with tab", "GET /api/echo/M HTTP/1.1\r\n\(h)X-A: a\r\n\tb\r\n\r\n")
        reject("first header folded", "GET /api/echo/M HTTP/1.1\r\n \(h)\r\n")
        reject("space before colon", "GET /api/echo/M HTTP/1.1\r\n\(h)X-A : b\r\n\r\n")
        reject("space in header name", "GET /api/echo/M HTTP/1.1\r\n\(h)X A: b\r\n\r\n")
        reject("no colon", "GET /api/echo/M HTTP/1.1\r\n\(h)NoColon\r\n\r\n")
        reject("empty header name", "GET /api/echo/M HTTP/1.1\r\n\(h): b\r\n\r\n")
        rejectBytes(
            "UTF-8 header name", text("GET /api/echo/M HTTP/1.1\r\n\(h)X-") + [0xC3, 0xA9] + text(": b\r\n\r\n"))

        // Framing.
        reject(
            "two different Content-Lengths",
            "POST /api/echo/M HTTP/1.1\r\n\(h)Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
        reject(
            "Content-Length list with different values",
            "POST /api/echo/M HTTP/1.1\r\n\(h)Content-Length: 5, 6\r\n\r\nhello!")
        reject("negative Content-Length", "POST /api/echo/M HTTP/1.1\r\n\(h)Content-Length: -1\r\n\r\n")
        reject("plus Content-Length", "POST /api/echo/M HTTP/1.1\r\n\(h)Content-Length: +5\r\n\r\nhello")
        reject("hex Content-Length", "POST /api/echo/M HTTP/1.1\r\n\(h)Content-Length: 0x5\r\n\r\nhello")
        reject("empty Content-Length", "POST /api/echo/M HTTP/1.1\r\n\(h)Content-Length:\r\n\r\n")
        reject(
            "20-digit Content-Length", "POST /api/echo/M HTTP/1.1\r\n\(h)Content-Length: 99999999999999999999\r\n\r\n")
        reject(
            "Content-Length with a space inside",
            "POST /api/echo/M HTTP/1.1\r\n\(h)Content-Length: 1 0\r\n\r\n0123456789")
        reject(
            "CL then TE",
            "POST /api/echo/M HTTP/1.1\r\n\(h)Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        reject(
            "TE then CL",
            "POST /api/echo/M HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n")
        reject(
            "TE chunked, identity",
            "POST /api/echo/M HTTP/1.1\r\n\(h)Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n")
        reject("TE xchunked", "POST /api/echo/M HTTP/1.1\r\n\(h)Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n")
        reject("TE chunkedx", "POST /api/echo/M HTTP/1.1\r\n\(h)Transfer-Encoding: chunkedx\r\n\r\n0\r\n\r\n")
        reject("TE chunked;q=1", "POST /api/echo/M HTTP/1.1\r\n\(h)Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n")
        reject("TE \"chunked\"", "POST /api/echo/M HTTP/1.1\r\n\(h)Transfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n")
        reject("TE empty", "POST /api/echo/M HTTP/1.1\r\n\(h)Transfer-Encoding:\r\n\r\n0\r\n\r\n")
        reject("TE gzip", "POST /api/echo/M HTTP/1.1\r\n\(h)Transfer-Encoding: gzip\r\n\r\n0\r\n\r\n")
        reject(
            "TE chunked then TE identity",
            "POST /api/echo/M HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n"
        )
        reject("TE space before colon", "POST /api/echo/M HTTP/1.1\r\n\(h)Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n")
        reject("TE in HTTP/1.0", "POST /api/echo/M HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        // Body-level: the head may have gone upstream; the body must not (400 or a close).
        func body(_ name: String, _ s: String, complete: Bool = true) {
            add(
                name, text("POST /api/echo/b HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n" + s), .reject,
                complete: complete)
        }
        body("17-digit chunk size", "FFFFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n")
        body("16-digit chunk size", "FFFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n")
        body(
            "huge chunk over max_body_size", "7FFFFFFFFFFFFFF\r\n" + String(repeating: "x", count: 1000),
            complete: false)
        body(
            "chunk over max_body_size, all sent",
            "100001\r\n" + String(repeating: "x", count: 0x100001) + "\r\n0\r\n\r\n")
        body("negative chunk size", "-5\r\nhello\r\n0\r\n\r\n")
        body("0x chunk size", "0x5\r\nhello\r\n0\r\n\r\n")
        body("empty chunk size", "\r\nhello\r\n0\r\n\r\n")
        body("chunk data too long", "5\r\nhello!\r\n0\r\n\r\n")
        body("chunk data too short", "5\r\nhell\r\n0\r\n\r\n")
        body("bare LF after chunk size", "5\nhello\r\n0\r\n\r\n")
        body("NUL in chunk extension", "5;a\u{0}\r\nhello\r\n0\r\n\r\n")
        body("CR in chunk extension", "5;a\rb\r\nhello\r\n0\r\n\r\n")
        body("garbage after chunk size", "5 x\r\nhello\r\n0\r\n\r\n")
        body("chunk size line of 5000 bytes", "5;" + String(repeating: "a", count: 5000) + "\r\nhello\r\n0\r\n\r\n")
        body("control byte in a trailer", "0\r\nX-T: a\u{1}b\r\n\r\n")
        body("bare LF in a trailer", "0\r\nX-T: a\nb\r\n\r\n")
        add(
            "Content-Length over max_body_size",
            text("POST /api/echo/M HTTP/1.1\r\n\(h)Content-Length: 1048577\r\n\r\n"), .reject,
            complete: false)
        add(
            "giant Content-Length", text("POST /api/echo/M HTTP/1.1\r\n\(h)Content-Length: 999999999999999999\r\n\r\n"),
            .reject,
            complete: false)

        // Sizes.
        add(
            "one 40 KiB header (431)",
            text("GET /api/echo/M HTTP/1.1\r\n\(h)X-Big: " + String(repeating: "b", count: 40 << 10) + "\r\n\r\n"),
            .reject, marker: true)
        add(
            "5000 headers (431)",
            text("GET /api/echo/M HTTP/1.1\r\n\(h)" + (0..<5000).map { "X-Hdr-\($0): v\r\n" }.joined() + "\r\n"),
            .reject, marker: true)
        add(
            "32 KiB with no line break (431)", text("GET /api/echo/M" + String(repeating: "a", count: 33 << 10)),
            .reject, complete: false)
        add(
            "head never ends (431 or close)",
            text("GET /api/echo/M HTTP/1.1\r\n\(h)" + String(repeating: "X-A: b\r\n", count: 4500)), .reject,
            complete: false)

        // Truncated heads, then close.
        let full = "POST /api/echo/t HTTP/1.1\r\n\(h)Origin: https://app.example.com\r\nContent-Length: 5\r\n\r\nhello"
        for cut in [1, 3, 4, 15, 25, 26, 27, 40, 60, full.utf8.count - 7, full.utf8.count - 5, full.utf8.count - 1] {
            add("truncated at \(cut) then FIN", Array(text(full)[0..<cut]), .reject, complete: false)
        }
        let chunked = "POST /api/echo/t HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        for back in [1, 2, 3, 5, 8, 12] {
            add(
                "chunked truncated \(back) before the end", Array(text(chunked).dropLast(back)), .reject,
                complete: false)
        }

        // Pipelined garbage after a valid request.
        let ok = "GET /api/echo/p HTTP/1.1\r\n\(h)\r\n"
        add("pipelined NULs", text(ok) + [UInt8](repeating: 0, count: 64), .validThenReject)
        add("pipelined bare LF", text(ok + "GET /api/echo/p2 HTTP/1.1\n\n"), .validThenReject)
        add("pipelined binary", text(ok) + (0..<512).map { UInt8(($0 * 37 + 11) % 256) }, .validThenReject)
        add("pipelined 40 KiB line", text(ok + String(repeating: "z", count: 40 << 10)), .validThenReject)
        add(
            "pipelined CL+TE",
            text(
                ok + "POST /api/echo/M HTTP/1.1\r\n\(h)Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            ), .validThenReject)
        return cases
    }

    // MARK: - The random generator

    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// A piece of a request and whether it alone makes the head malformed.
    typealias Piece = (text: [UInt8], bad: Bool)

    static func randomCase(_ index: Int, rng: inout SplitMix) -> FuzzCase {
        func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &rng)] }
        // Each slot takes a malformed piece one time in eight, so about a third of the inputs are valid.
        func pickPiece(_ items: [Piece]) -> Piece {
            let wantBad = Int.random(in: 0..<8, using: &rng) == 0
            let pool = items.filter { $0.bad == wantBad }
            return pool.isEmpty ? pick(items) : pick(pool)
        }
        func t(_ s: String) -> [UInt8] { Array(s.utf8) }
        let id = "rnd-\(index)"
        let methods: [Piece] = [
            (t("GET"), false), (t("POST"), false), (t("PUT"), false), (t("DELETE"), false), (t("OPTIONS"), false),
            (t("get"), false), (t("M-SEARCH"), false), (t("G ET"), true), (t(""), true), (t("GE(T"), true),
            (t("GE") + [0] + t("T"), true), ([0x80] + t("GET"), true), (t("GET\t"), true),
            (t(String(repeating: "X", count: 300)), false),
        ]
        let oddMethod = { (m: [UInt8]) in m == t("get") || m == t("M-SEARCH") || m.count == 300 }
        let targets: [Piece] = [
            (t("/api/echo/\(id)"), false), (t("/api/echo/\(id)?a=b&c=%00"), false), (t("/raw/echo/\(id)"), false),
            (t("/api/public/echo/\(id)"), false), (t("/api/echo/\(id)/../x"), false), (t("/nowhere/\(id)"), false),
            (t("*"), true), (t("http://127.0.0.1/api/echo/\(id)"), true), (t("api/echo/\(id)"), true),
            (t("/api/echo/\(id)") + [0x7F], true), (t("/api/echo/\(id)") + [0x01], true),
            (t("/api/echo/\(id)") + [0xE2, 0x82, 0xAC], true),
        ]
        let versions: [(text: [UInt8], bad: Bool, minor: Int)] = [
            (t("HTTP/1.1"), false, 1), (t("HTTP/1.1"), false, 1), (t("HTTP/1.0"), false, 0), (t("HTTP/2.0"), true, 1),
            (t("http/1.1"), true, 1), (t("HTTP/1.1 "), true, 1), (t("HTTP/1.10"), true, 1), (t("HTTP/1"), true, 1),
            (t(""), true, 1),
        ]
        let eols: [Piece] = [
            (t("\r\n"), false), (t("\r\n"), false), (t("\r\n"), false), (t("\n"), true), (t("\r"), true),
            (t("\r\r\n"), true),
        ]
        let headerPool: [Piece] = [
            (t("Origin: https://app.example.com"), false), (t("Origin: https://evil.example"), false),
            (t("Origin: https://bücher.example.org"), false), (t("Origin: null"), false), (t("Origin:"), false),
            (t("Origin: https://app.example.com, https://x.example.org"), false),
            (t("Access-Control-Request-Method: PUT"), false), (t("Access-Control-Request-Headers: x-custom"), false),
            (t("X-Latin1: ") + [0xE9, 0x74, 0xE9], false), (t("X-Empty:"), false), (t("X-Tab: a\tb"), false),
            (t("Accept: */*"), false), (t("Connection: keep-alive"), false), (t("Connection: close"), false),
            (t("Cookie: a=b; c=d"), false), (t("X-Long: " + String(repeating: "L", count: 8000)), false),
            (t("Expect: 100-continue"), false), (t("X-Forwarded-For: 10.0.0.1"), false),
            (t("X-Nul: a") + [0] + t("b"), true), (t("X-Fold: a\r\n b"), true), (t(" X-Lead: a"), true),
            (t("X Bad: a"), true), (t("X-Bad : a"), true), (t("NoColon"), true), (t("X-Ctl: a") + [1] + t("b"), true),
            (t("X-Del: a") + [0x7F], true), (t("Host: second"), true), (t(": empty"), true),
            (t("X-LF: a\nX-Y: b"), true),
            (t("X-CR: a\rb"), true), (t("X-Big: " + String(repeating: "B", count: 33 << 10)), true),
        ]
        // Framing: header lines, body, head-bad, body-bad, complete.
        typealias Framing = (
            headers: [[UInt8]], body: [UInt8], headBad: Bool, bodyBad: Bool, complete: Bool, chunked: Bool
        )
        let framings: [Framing] = [
            ([], [], false, false, true, false),
            ([t("Content-Length: 5")], t("hello"), false, false, true, false),
            ([t("Content-Length: 0")], [], false, false, true, false),
            ([t("Content-Length: 5"), t("Content-Length: 5")], t("hello"), false, false, true, false),
            ([t("Content-Length: 5"), t("Content-Length: 6")], t("hello!"), true, false, true, false),
            ([t("Content-Length: 5, 7")], t("hello!!"), true, false, true, false),
            ([t("Content-Length: -5")], [], true, false, true, false),
            ([t("Content-Length: 5"), t("Transfer-Encoding: chunked")], t("0\r\n\r\n"), true, false, true, true),
            ([t("Transfer-Encoding: chunked")], t("5\r\nhello\r\n0\r\n\r\n"), false, false, true, true),
            ([t("Transfer-Encoding: Chunked")], t("3;x=y\r\nabc\r\n0\r\n\r\n"), false, false, true, true),
            ([t("Transfer-Encoding: chunked, identity")], t("0\r\n\r\n"), true, false, true, true),
            ([t("Transfer-Encoding: xchunked")], t("0\r\n\r\n"), true, false, true, true),
            ([t("Transfer-Encoding: identity")], [], true, false, true, true),
            ([t("Transfer-Encoding: chunked")], t("FFFFFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n"), false, true, true, true),
            ([t("Transfer-Encoding: chunked")], t("5\r\nhello0\r\n\r\n"), false, true, true, true),
            ([t("Transfer-Encoding: chunked")], t("5;\u{1}\r\nhello\r\n0\r\n\r\n"), false, true, true, true),
            ([t("Transfer-Encoding: chunked")], t("5\r\nhel"), false, true, false, true),
            ([t("Content-Length: 50")], t("short"), false, true, false, false),
        ]

        let method = pickPiece(methods)
        let target = pickPiece(targets)
        let versionBad = Int.random(in: 0..<8, using: &rng) == 0
        let version = pick(versions.filter { $0.bad == versionBad })
        let eol = pickPiece(eols)
        var headBad = method.bad || target.bad || version.bad || eol.bad
        var lines: [[UInt8]] = []
        if Int.random(in: 0..<10, using: &rng) > 0 { lines.append(t("Host: 127.0.0.1")) }
        var hosts = lines.count
        for _ in 0..<Int.random(in: 0...5, using: &rng) {
            let p = pickPiece(headerPool)
            lines.append(p.text)
            if p.text == t("Host: second") {
                hosts += 1
            } else {
                headBad = headBad || p.bad
            }
        }
        let badFraming = Int.random(in: 0..<4, using: &rng) == 0
        // HTTP/1.1 needs exactly one Host; HTTP/1.0 at most one.
        headBad = headBad || hosts > 1 || (hosts == 0 && version.minor == 1)
        let framing = pick(framings.filter { ($0.headBad || $0.bodyBad) == badFraming })
        lines.append(contentsOf: framing.headers)
        headBad = headBad || framing.headBad || (framing.chunked && version.minor == 0)
        lines.shuffle(using: &rng)
        var bytes = method.text + [0x20] + target.text + [0x20] + version.text + eol.text
        for line in lines { bytes += line + [0x0D, 0x0A] }
        bytes += [0x0D, 0x0A]
        let headSize = bytes.count
        bytes += framing.body
        // Sometimes cut the input short, then close.
        var complete = framing.complete
        // A bad body is refused only when the request is forwarded; a preflight, a denial or a
        // 404 is answered from the head alone: so a bad body alone may get any clean answer.
        var expect: Expectation = headBad ? .reject : (framing.bodyBad ? .either : .valid)
        if headSize > 32 << 10 { expect = .reject }  // 431
        if Int.random(in: 0..<8, using: &rng) == 0 && bytes.count > 2 {
            let cut = Int.random(in: 1..<(bytes.count - 1), using: &rng)
            bytes = Array(bytes[0..<cut])
            complete = false
            // Cut inside the head: never a complete request. Inside the body: as above.
            expect = cut < headSize ? .reject : (headBad ? .reject : .either)
        }
        // A valid preflight answer or a 403 with a body announced closes the connection: still valid.
        let marker = headBad && complete ? id : nil
        var c = FuzzCase(name: "\(id)", bytes: bytes, expect: expect, complete: complete, marker: marker)
        c.upstreamMayRefuse = oddMethod(method.text)
        return c
    }

    /// A valid request with a few bytes flipped, inserted or deleted: any clean answer is fine.
    static func mutatedCase(_ index: Int, rng: inout SplitMix) -> FuzzCase {
        let bases = [
            "GET /api/echo/m?q=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://app.example.com\r\n\r\n",
            "POST /api/echo/m HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello",
            "PUT /api/items/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "OPTIONS /api/items HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example.org\r\nAccess-Control-Request-Method: PUT\r\n\r\n",
        ]
        var bytes = Array(bases[Int.random(in: 0..<bases.count, using: &rng)].utf8)
        let special: [UInt8] = [0, 0x0D, 0x0A, 0x20, 0x09, 0x3A, 0x3B, 0x2C, 0x7F, 0x80, 0xFF, 0x22, 0x30, 0x46]
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let at = Int.random(in: 0..<bytes.count, using: &rng)
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: bytes[at] = special[Int.random(in: 0..<special.count, using: &rng)]
            case 1: bytes.insert(special[Int.random(in: 0..<special.count, using: &rng)], at: at)
            default: if bytes.count > 4 { bytes.remove(at: at) }
            }
        }
        var c = FuzzCase(name: "mut-\(index)", bytes: bytes, expect: .either, complete: true)
        c.upstreamMayRefuse = true
        return c
    }

    /// The input as a Swift-ish literal, shortened, for failure messages.
    static func escaped(_ bytes: [UInt8]) -> String {
        var out = ""
        for b in bytes.prefix(400) {
            switch b {
            case 0x0D: out += "\\r"
            case 0x0A: out += "\\n"
            case 0x09: out += "\\t"
            case 0x5C: out += "\\\\"
            case 0x20...0x7E: out.unicodeScalars.append(Unicode.Scalar(b))
            default: out += String(format: "\\x%02X", b)
            }
        }
        return bytes.count > 400 ? out + "… (\(bytes.count) bytes)" : out
    }

    // MARK: - Tests

    @Test func malformedTruncatedOversizedAndOddInputs() throws {
        let env = ProcessInfo.processInfo.environment
        let seed = UInt64(env["HTTP_FUZZ_SEED"] ?? "") ?? 6
        let randomCount = Int(env["HTTP_FUZZ_CASES"] ?? "") ?? 1500
        var rng = SplitMix(state: seed)
        var cases = Self.catalogue()
        let catalogueCount = cases.count
        for i in 0..<randomCount {
            cases.append(i % 3 == 2 ? Self.mutatedCase(i, rng: &rng) : Self.randomCase(i, rng: &rng))
        }
        try upstream.reset()
        var tally = Tally()
        var failures: [String] = []
        var markers: [String] = []
        let started = Date()
        let budget = 40.0  // seconds: bounded whatever the seed
        for (n, c) in cases.enumerated() {
            if Date().timeIntervalSince(started) > budget {
                // Bounded whatever the machine (sanitizer builds are 5-20x slower): stop, do not fail.
                print("HTTP fuzz: time budget of \(budget) s spent after \(n) of \(cases.count) inputs")
                break
            }
            if let failure = run(c, tally: &tally) {
                failures.append(failure + "\n    input: " + Self.escaped(c.bytes))
            }
            if let m = c.marker { markers.append(m) }
            if n % 50 == 49 || n == cases.count - 1 {
                if !proxyAnswers() {
                    failures.append("the proxy stopped answering after input \(c.name)")
                    break
                }
                // A refused head never reaches the upstream (the log holds the last 1000 requests).
                let seen = try upstream.receivedTargets()
                for m in markers {
                    if let t = seen.first(where: {
                        $0.hasSuffix("/" + m) || $0.contains("/" + m + "?") || $0.contains("/" + m + "/")
                    }) {
                        failures.append("\(m): a refused head reached the upstream as \(t)")
                    }
                }
                markers.removeAll()
                try upstream.reset()
            }
        }
        let elapsed = Date().timeIntervalSince(started)
        print(
            "HTTP fuzz: seed \(seed), \(tally.cases) inputs (\(catalogueCount) catalogue, \(tally.cases - catalogueCount) random), "
                + "\(tally.bytes) bytes; \(tally.valid) valid answers, \(tally.rejected) 400/413/431, "
                + "\(tally.closed) closed, \(tally.finNeeded) needed the client's FIN; \(String(format: "%.1f", elapsed)) s"
        )
        #expect(failures.isEmpty, "\(failures.count) failures:\n\(failures.prefix(40).joined(separator: "\n"))")
        #expect(proxyAnswers())
        #expect(proxy.process.sanitizerReports.isEmpty)
    }
}
