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
        var reason: HTTPParseError
        var testDescription: String { name }
    }

    static let chunkedHead = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"

    /// One case (or more) per rule; each says which rule must fire.
    static let badRequests: [Bad] = [
        // Sizes
        Bad(
            name: "head over 32 KiB",
            text: "GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "a", count: 33 * 1024) + "\r\n\r\n",
            reason: .headTooLarge),
        Bad(
            name: "unterminated head over 32 KiB",
            text: "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 40 * 1024), reason: .headTooLarge),
        Bad(
            name: "trailer line over 32 KiB",
            text: chunkedHead + "0\r\nX-T: " + String(repeating: "a", count: 33 * 1024), reason: .trailerLineTooLarge),
        // Line breaks and bytes
        Bad(name: "bare LF", text: "GET / HTTP/1.1\nHost: h\r\n\r\n", reason: .bareLF),
        Bad(name: "bare LF in an unfinished head", text: "GET / HTTP/1.1\r\nHost: h\nX: y", reason: .bareLF),
        Bad(name: "bare CR", text: "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", reason: .bareCR),
        Bad(name: "bare CR in an unfinished head", text: "GET / HTTP/1.1\r\nHost: h\rX: y", reason: .bareCR),
        Bad(name: "NUL in value", text: "GET / HTTP/1.1\r\nHost: h\r\nX: a\u{0}b\r\n\r\n", reason: .controlByte),
        Bad(name: "DEL in value", text: "GET / HTTP/1.1\r\nHost: h\r\nX: a\u{7F}b\r\n\r\n", reason: .controlByte),
        Bad(name: "ESC in the target", text: "GET /\u{1B} HTTP/1.1\r\nHost: h\r\n\r\n", reason: .controlByte),
        Bad(name: "only blank lines", text: "\r\n\r\n", reason: .emptyRequest),
        // Request line
        Bad(name: "no target", text: "GET\r\nHost: h\r\n\r\n", reason: .malformedRequestLine),
        Bad(name: "no version", text: "GET /\r\nHost: h\r\n\r\n", reason: .malformedRequestLine),
        Bad(name: "two spaces", text: "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", reason: .malformedRequestLine),
        Bad(name: "bad method", text: "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", reason: .invalidMethod),
        Bad(name: "non-ASCII target", text: "GET /caf\u{E9} HTTP/1.1\r\nHost: h\r\n\r\n", reason: .invalidTarget),
        Bad(name: "absolute form", text: "GET http://x/ HTTP/1.1\r\nHost: h\r\n\r\n", reason: .targetNotOriginForm),
        Bad(name: "asterisk form", text: "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", reason: .targetNotOriginForm),
        Bad(name: "HTTP/2 line", text: "GET / HTTP/2.0\r\nHost: h\r\n\r\n", reason: .unsupportedVersion),
        Bad(name: "HTTP/1.2", text: "GET / HTTP/1.2\r\nHost: h\r\n\r\n", reason: .unsupportedVersion),
        Bad(name: "lowercase version", text: "GET / http/1.1\r\nHost: h\r\n\r\n", reason: .unsupportedVersion),
        // Header lines
        Bad(name: "obs-fold", text: "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n  b\r\n\r\n", reason: .obsFold),
        Bad(name: "obs-fold with a tab", text: "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n", reason: .obsFold),
        Bad(
            name: "space before colon", text: "GET / HTTP/1.1\r\nHost: h\r\nX-A : b\r\n\r\n",
            reason: .invalidHeaderName),
        Bad(
            name: "no colon", text: "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", reason: .headerWithoutColon),
        Bad(name: "empty name", text: "GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", reason: .headerWithoutColon),
        Bad(name: "no Host", text: "GET / HTTP/1.1\r\nX: y\r\n\r\n", reason: .missingHost),
        Bad(name: "two Hosts", text: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", reason: .duplicateHost),
        Bad(
            name: "two Hosts, other case", text: "GET / HTTP/1.1\r\nHost: a\r\nhOST: a\r\n\r\n", reason: .duplicateHost),
        // Framing
        Bad(
            name: "negative CL", text: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
            reason: .invalidContentLength),
        Bad(
            name: "CL not a number", text: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5x\r\n\r\n",
            reason: .invalidContentLength),
        Bad(
            name: "empty CL", text: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n",
            reason: .invalidContentLength),
        Bad(
            name: "CL of 19 digits",
            text: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000000000000000\r\n\r\n",
            reason: .invalidContentLength),
        Bad(
            name: "two different CL",
            text: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            reason: .conflictingContentLength),
        Bad(
            name: "CL list differing", text: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n",
            reason: .conflictingContentLength),
        Bad(
            name: "CL with TE",
            text: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            reason: .contentLengthWithTransferEncoding),
        Bad(
            name: "TE before CL",
            text: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            reason: .contentLengthWithTransferEncoding),
        Bad(
            name: "TE not chunked last",
            text: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            reason: .transferEncodingNotChunked),
        Bad(
            name: "TE gzip only", text: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
            reason: .transferEncodingNotChunked),
        Bad(
            name: "TE in HTTP/1.0", text: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            reason: .transferEncodingInHTTP10),
        // Chunked bodies
        Bad(name: "chunk size not hex", text: chunkedHead + "zz\r\n", reason: .invalidChunkSize),
        Bad(name: "junk after the chunk size", text: chunkedHead + "5 x\r\nhello\r\n", reason: .invalidChunkSize),
        Bad(name: "huge chunk size", text: chunkedHead + "ffffffffffffffffff\r\n", reason: .chunkSizeTooLarge),
        Bad(
            name: "chunk size line over 4 KiB", text: chunkedHead + "5;" + String(repeating: "a", count: 5000),
            reason: .chunkSizeLineTooLong),
        Bad(
            name: "control byte in a chunk extension", text: chunkedHead + "5;a\u{1}b\r\nhello\r\n",
            reason: .invalidChunkExtension),
        Bad(name: "chunk without CRLF", text: chunkedHead + "2\r\nabX\r\n", reason: .chunkDataWithoutCRLF),
        Bad(
            name: "control byte in a trailer", text: chunkedHead + "0\r\nX-T: a\u{1}b\r\n\r\n",
            reason: .controlByteInTrailer),
    ]

    @Test(arguments: badRequests)
    func malformedRequestsAreRefused(_ bad: Bad) {
        let (_, error) = parse(bad.text)
        #expect(error == bad.reason, "\(bad.name): \(error.map { "\($0)" } ?? "accepted")")
    }

    /// The rule that fires does not depend on how the bytes arrive (the early bare-CR/LF check
    /// on an unfinished head agrees with the check on a complete one).
    @Test(arguments: badRequests)
    func theSameRuleFiresWhenFedInSmallPieces(_ bad: Bad) {
        let (_, error) = parse(bad.text, chunkSize: bad.text.utf8.count < 8192 ? 1 : 997)
        #expect(error == bad.reason, "\(bad.name): \(error.map { "\($0)" } ?? "accepted")")
    }

    @Test func everyRuleIsCovered() {
        let covered = Set(Self.badRequests.map(\.reason)).union([.alreadyFailed])
        #expect(Set(HTTPParseError.allCases).subtracting(covered).isEmpty)
    }

    /// 431 only for the two size limits; every other refusal is 400. Each rule has its own words.
    @Test func statusAndDetail() {
        for reason in HTTPParseError.allCases {
            let sizeLimit = reason == .headTooLarge || reason == .trailerLineTooLarge
            #expect(reason.status == (sizeLimit ? 431 : 400), "\(reason)")
            #expect(!reason.detail.isEmpty)
        }
        #expect(Set(HTTPParseError.allCases.map(\.detail)).count == HTTPParseError.allCases.count)
    }

    /// After a refusal the parser refuses everything, whether it failed in the head or in a body.
    @Test(arguments: ["GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", chunkedHead + "zz\r\n"])
    func aFailedParserStaysFailed(_ text: String) {
        var parser = HTTPRequestParser()
        var buffer = ByteBuffer(string: text)
        var refused = false
        do {
            while try parser.next(&buffer) != nil {}
        } catch {
            refused = true
        }
        #expect(refused)
        var next = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(throws: HTTPParseError.alreadyFailed) { try parser.next(&next) }
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
