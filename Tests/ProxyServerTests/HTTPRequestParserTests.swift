import NIOCore
import Testing

@testable import ProxyServer

struct HTTPRequestParserTests {
    /// Parses `text` fed in one piece; returns the parts or the error.
    func parse(_ text: String, chunkSize: Int? = nil) -> (parts: [HTTPRequestParser.Part], error: HTTPParseError?) {
        var parser = HTTPRequestParser()
        var buffer = ByteBuffer()
        var parts: [HTTPRequestParser.Part] = []
        let bytes = Array(text.utf8)
        let step = chunkSize ?? max(bytes.count, 1)
        var offset = 0
        while offset < bytes.count {
            buffer.writeBytes(bytes[offset..<min(offset + step, bytes.count)])
            offset += step
            do {
                while let part = try parser.next(&buffer) { parts.append(part) }
            } catch {
                return (parts, error)
            }
        }
        return (parts, nil)
    }

    func heads(_ parts: [HTTPRequestParser.Part]) -> [RequestHead] {
        parts.compactMap { if case .head(let h) = $0 { return h } else { return nil } }
    }

    func bodyText(_ parts: [HTTPRequestParser.Part]) -> String {
        var out = ""
        for case .body(let b) in parts { out += String(buffer: b) }
        return out
    }

    @Test func simpleGet() throws {
        let (parts, error) = parse(
            "GET /api/x?a=1&b=%2F HTTP/1.1\r\nHost: example\r\nOrigin: https://a.example\r\n\r\n")
        #expect(error == nil)
        let head = try #require(heads(parts).first)
        #expect(head.method == "GET")
        #expect(head.target == "/api/x?a=1&b=%2F")
        #expect(head.path == "/api/x")
        #expect(head.query == "?a=1&b=%2F")
        #expect(head.headers.map { $0.name } == ["Host", "Origin"])
        #expect(head.body == .none)
        #expect(head.keepAlive)
    }

    /// Common long names come from a table of literals (no allocation); every name must
    /// still read exactly as the client spelled it, known or not, whatever its case.
    @Test func headerNamesKeepTheClientsSpelling() throws {
        let names = [
            "Access-Control-Request-Method", "ACCESS-CONTROL-REQUEST-METHOD", "access-control-request-headers",
            "Accept-Language", "accept-languagE", "Sec-Fetch-Mode", "X-Some-Long-Custom-Header", "sec-ch-ua-platform",
            "Upgrade-Insecure-Requests", "X-Short",
        ]
        var text = "GET / HTTP/1.1\r\nHost: h\r\n"
        for (i, name) in names.enumerated() { text += "\(name): v\(i)\r\n" }
        let (parts, error) = parse(text + "\r\n")
        #expect(error == nil)
        let head = try #require(heads(parts).first)
        #expect(head.headers.map(\.name) == ["Host"] + names)
        #expect(head.headers.map(\.value) == ["h"] + names.indices.map { "v\($0)" })
    }

    @Test(arguments: [1, 2, 7, 1000])
    func incrementalFeedingGivesTheSameResult(chunk: Int) throws {
        let text = "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world"
        let (parts, error) = parse(text, chunkSize: chunk)
        #expect(error == nil)
        #expect(heads(parts).count == 1)
        #expect(bodyText(parts) == "hello world")
        guard case .end = parts.last else {
            Issue.record("a Content-Length body must end with .end")
            return
        }
    }

    @Test func chunkedBodyAndTrailers() throws {
        let text =
            "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
        for chunk in [1, 3, 1000] {
            let (parts, error) = parse(text, chunkSize: chunk)
            #expect(error == nil)
            #expect(bodyText(parts) == "hello world")
            guard case .end = parts.last else {
                Issue.record("no end part")
                return
            }
        }
    }

    @Test func pipelinedRequestsAreSeparated() {
        let text =
            "GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhiGET /c HTTP/1.1\r\nHost: h\r\n\r\n"
        let (parts, error) = parse(text)
        #expect(error == nil)
        #expect(heads(parts).map(\.target) == ["/a", "/b", "/c"])
        #expect(bodyText(parts) == "hi")
    }

    struct Bad: CustomTestStringConvertible, Sendable {
        var name: String
        var text: String
        var status: Int
        var testDescription: String { name }
    }

    @Test(arguments: [
        Bad(
            name: "CL with TE",
            text: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400),
        Bad(
            name: "two different CL",
            text: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", status: 400),
        Bad(name: "CL list differing", text: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n", status: 400),
        Bad(name: "negative CL", text: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", status: 400),
        Bad(
            name: "TE not chunked last", text: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            status: 400),
        Bad(name: "obs-fold", text: "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n  b\r\n\r\n", status: 400),
        Bad(name: "bare LF", text: "GET / HTTP/1.1\nHost: h\r\n\r\n", status: 400),
        Bad(name: "bare CR", text: "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", status: 400),
        Bad(name: "NUL in value", text: "GET / HTTP/1.1\r\nHost: h\r\nX: a\u{0}b\r\n\r\n", status: 400),
        Bad(name: "space before colon", text: "GET / HTTP/1.1\r\nHost: h\r\nX-A : b\r\n\r\n", status: 400),
        Bad(name: "no Host", text: "GET / HTTP/1.1\r\nX: y\r\n\r\n", status: 400),
        Bad(name: "two Hosts", text: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: 400),
        Bad(name: "bad method", text: "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", status: 400),
        Bad(name: "HTTP/2 line", text: "GET / HTTP/2.0\r\nHost: h\r\n\r\n", status: 400),
        Bad(name: "absolute form", text: "GET http://x/ HTTP/1.1\r\nHost: h\r\n\r\n", status: 400),
        Bad(
            name: "huge chunk size",
            text: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", status: 400),
        Bad(
            name: "chunk without CRLF",
            text: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", status: 400),
        Bad(
            name: "head over 32 KiB",
            text: "GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "a", count: 33 * 1024) + "\r\n\r\n",
            status: 431),
        Bad(
            name: "unterminated head over 32 KiB",
            text: "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 40 * 1024), status: 431),
    ])
    func malformedRequestsAreRefused(_ bad: Bad) {
        let (_, error) = parse(bad.text)
        #expect(error?.status == bad.status, "\(bad.name)")
    }

    @Test func sameContentLengthTwiceIsAccepted() {
        let (parts, error) = parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok")
        #expect(error == nil)
        #expect(bodyText(parts) == "ok")
    }

    @Test func http10KeepAliveRules() throws {
        let h10 = try #require(heads(parse("GET / HTTP/1.0\r\n\r\n").parts).first)
        #expect(!h10.keepAlive)
        let h10ka = try #require(heads(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").parts).first)
        #expect(h10ka.keepAlive)
        let h11close = try #require(heads(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").parts).first)
        #expect(!h11close.keepAlive)
    }

    @Test func upgradeAndExpectAreRecognised() throws {
        let head = try #require(
            heads(
                parse(
                    "POST / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"
                ).parts
            ).first)
        #expect(head.isUpgrade)
        #expect(head.expectContinue)
    }
}
