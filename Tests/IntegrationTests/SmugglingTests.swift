import Foundation
import TestSupport
import Testing

/// Request smuggling (docs/DESIGN.md, "Request limits": "no request can hide inside another on the way
/// upstream"). Each payload goes out on a fresh connection, then two plain requests follow on
/// another one (they reuse the proxy's pooled upstream connection, where a desync would show).
/// The upstream's `/__requests` log must hold at most as many requests as the client sent
/// (read strictly, RFC 9112), never the hidden `SMUGGLED` one, and the two plain requests
/// exactly as sent.
@Suite(.serialized)
final class SmugglingTests {
    let upstream: Upstream
    let proxy: Proxy

    init() throws {
        upstream = try Upstream()
        proxy = try Proxy(conf: standardConf(upstream: upstream.url))
    }

    static let hidden = "GET /api/echo/SMUGGLED HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    static var hiddenLength: Int { hidden.utf8.count }

    struct Payload {
        var name: String
        var bytes: String
        /// Requests the client sent, read strictly; the upstream may see at most these.
        var sent: Int
        /// Responses to read before the client half-closes (a refusal or a close ends it earlier).
        var responses: Int = 1
        /// The proxy must refuse it (400/413 or a close), forwarding nothing.
        var refused: Bool = false
        /// The hidden request is a real pipelined request here (the control cases).
        var markerAllowed: Bool = false
        var head: Bool = false
        /// Body bytes the upstream must report for the outer request, when it is forwarded.
        var bodyLength: Int? = nil
    }

    static func payloads() -> [Payload] {
        let h = "Host: 127.0.0.1\r\n"
        let x = hidden
        let n = hiddenLength
        let hexN = String(n, radix: 16)
        return [
            // Controls: what a strict reading says is really there.
            Payload(
                name: "control: two pipelined requests", bytes: "GET /api/echo/a HTTP/1.1\r\n\(h)\r\n" + x, sent: 2,
                responses: 2, markerAllowed: true),
            Payload(
                name: "control: chunked body, then a second request",
                bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + x, sent: 2,
                responses: 2,
                markerAllowed: true),
            // A request inside a body is body.
            Payload(
                name: "request inside a Content-Length body",
                bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Content-Length: \(n)\r\n\r\n" + x, sent: 1, bodyLength: n),
            Payload(
                name: "request inside a chunk",
                bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n\(hexN)\r\n" + x
                    + "\r\n0\r\n\r\n", sent: 1, bodyLength: n),
            Payload(
                name: "GET with a body holding a request",
                bytes: "GET /api/echo/a HTTP/1.1\r\n\(h)Content-Length: \(n)\r\n\r\n" + x, sent: 1, bodyLength: n),
            Payload(
                name: "HEAD with a body holding a request",
                bytes: "HEAD /api/echo/a HTTP/1.1\r\n\(h)Content-Length: \(n)\r\n\r\n" + x, sent: 1, head: true),
            Payload(
                name: "OPTIONS (actual) with a body",
                bytes: "OPTIONS /api/echo/a HTTP/1.1\r\n\(h)Content-Length: \(n)\r\n\r\n" + x, sent: 1, bodyLength: n),
            Payload(
                name: "DELETE with a chunked body",
                bytes: "DELETE /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n\(hexN)\r\n" + x
                    + "\r\n0\r\n\r\n", sent: 1, bodyLength: n),
            Payload(
                name: "Connection names Content-Length",
                bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Connection: Content-Length\r\nContent-Length: \(n)\r\n\r\n"
                    + x, sent: 1, bodyLength: n),
            Payload(
                name: "Connection names Transfer-Encoding",
                bytes:
                    "POST /api/echo/a HTTP/1.1\r\n\(h)Connection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n\(hexN)\r\n"
                    + x + "\r\n0\r\n\r\n", sent: 1, bodyLength: n),
            Payload(
                name: "Expect 100-continue, request in the body",
                bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Expect: 100-continue\r\nContent-Length: \(n)\r\n\r\n" + x,
                sent: 1, bodyLength: n),
            Payload(
                name: "request in a trailer",
                bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n0\r\n" + x, sent: 1,
                bodyLength: 0),
            Payload(
                name: "request in a chunk extension",
                bytes:
                    "POST /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n0;x=\"GET /api/echo/SMUGGLED HTTP/1.1\"\r\n\r\n",
                sent: 1, bodyLength: 0),
            Payload(
                name: "local answer (preflight) with a body",
                bytes:
                    "OPTIONS /api/items HTTP/1.1\r\n\(h)Origin: https://app.example.com\r\nAccess-Control-Request-Method: PUT\r\nContent-Length: \(n)\r\n\r\n"
                    + x, sent: 1, responses: 2),
            Payload(
                name: "local answer (no route) with a body",
                bytes: "POST /nowhere HTTP/1.1\r\n\(h)Content-Length: \(n)\r\n\r\n" + x, sent: 1, responses: 2),
            Payload(
                name: "local answer (denied) with a body",
                bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Origin: https://evil.example\r\nContent-Length: \(n)\r\n\r\n"
                    + x, sent: 1, responses: 2),
            // CL.TE and TE.CL.
            Payload(
                name: "CL.TE",
                bytes:
                    "POST /api/echo/a HTTP/1.1\r\n\(h)Content-Length: \(n + 5)\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                    + x, sent: 1, refused: true),
            Payload(
                name: "TE.CL",
                bytes:
                    "POST /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n\(hexN)\r\n"
                    + x + "\r\n0\r\n\r\n", sent: 1, refused: true),
            Payload(
                name: "CL.TE, TE in a later line",
                bytes:
                    "POST /api/echo/a HTTP/1.1\r\n\(h)Content-Length: 0\r\nX-A: b\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + x, sent: 1, refused: true),
            // TE.TE obfuscations.
            Payload(
                name: "TE.TE xchunked + CL",
                bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding: xchunked\r\nContent-Length: \(n)\r\n\r\n"
                    + x, sent: 1, refused: true),
            Payload(
                name: "TE.TE space before colon",
                bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding : chunked\r\nContent-Length: 0\r\n\r\n" + x,
                sent: 1, refused: true),
            Payload(
                name: "TE.TE chunked then identity",
                bytes:
                    "POST /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n"
                    + x, sent: 1, refused: true),
            Payload(
                name: "TE.TE identity, chunked + CL",
                bytes:
                    "POST /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding: identity, chunked\r\nContent-Length: \(n)\r\n\r\n0\r\n\r\n"
                    + x, sent: 1, refused: true),
            Payload(
                name: "TE.TE tab + CL",
                bytes:
                    "POST /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding:\tchunked\r\nContent-Length: \(n)\r\n\r\n0\r\n\r\n"
                    + x, sent: 1, refused: true),
            Payload(
                name: "TE.TE bare LF before TE",
                bytes:
                    "POST /api/echo/a HTTP/1.1\r\n\(h)X-A: b\nTransfer-Encoding: chunked\r\nContent-Length: \(n)\r\n\r\n"
                    + x, sent: 1, refused: true),
            Payload(
                name: "TE.TE obs-fold",
                bytes:
                    "POST /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding: identity\r\n chunked\r\nContent-Length: \(n)\r\n\r\n"
                    + x, sent: 1, refused: true),
            Payload(
                name: "TE.TE vertical tab",
                bytes:
                    "POST /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding:\u{0B}chunked\r\nContent-Length: \(n)\r\n\r\n"
                    + x, sent: 1, refused: true),
            Payload(
                name: "TE.TE NUL",
                bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\u{0}\r\n\r\n0\r\n\r\n" + x, sent: 1,
                refused: true),
            Payload(
                name: "TE in HTTP/1.0",
                bytes: "POST /api/echo/a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + x, sent: 1,
                refused: true),
            // Double Content-Length.
            Payload(
                name: "CL 0 then CL n",
                bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Content-Length: 0\r\nContent-Length: \(n)\r\n\r\n" + x,
                sent: 1, refused: true),
            Payload(
                name: "CL n then CL 0",
                bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Content-Length: \(n)\r\nContent-Length: 0\r\n\r\n" + x,
                sent: 1, refused: true),
            Payload(
                name: "CL list 0, n", bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Content-Length: 0, \(n)\r\n\r\n" + x,
                sent: 1, refused: true),
            Payload(
                name: "CL with leading +", bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Content-Length: +\(n)\r\n\r\n" + x,
                sent: 1, refused: true),
            // Chunk-size tricks (the head may go upstream; the hidden request never).
            Payload(
                name: "17-digit chunk size",
                bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n0000000000000000\(hexN)\r\n"
                    + x + "\r\n0\r\n\r\n", sent: 1),
            Payload(
                name: "overflowing chunk size",
                bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n10000000000000000\(hexN)\r\n"
                    + x + "\r\n0\r\n\r\n", sent: 1),
            Payload(
                name: "chunk size with a LF only",
                bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n0\n\r\n" + x, sent: 1),
            Payload(
                name: "short chunk, request after it",
                bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n3\r\nabc" + x
                    + "\r\n0\r\n\r\n", sent: 1),
            Payload(
                name: "negative chunk size",
                bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n-1\r\n" + x
                    + "\r\n0\r\n\r\n", sent: 1),
            Payload(
                name: "chunk size 0x",
                bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n0x\(hexN)\r\n" + x
                    + "\r\n0\r\n\r\n", sent: 1),
            Payload(
                name: "chunk extension with a bare CR",
                bytes: "POST /api/echo/a HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n\(hexN);a\rb\r\n" + x
                    + "\r\n0\r\n\r\n", sent: 1),
        ]
    }

    struct Result {
        var statuses: [Int]
        var upstreamRequests: Int
    }

    func runPayload(_ p: Payload) throws -> (failure: String?, result: Result) {
        try upstream.reset()
        let client = HTTPClient(port: proxy.port, timeoutSeconds: 3)
        client.sendAllowingClose(Array(p.bytes.utf8))
        var statuses: [Int] = []
        var bodies: [String] = []
        var hung = false
        while statuses.count < p.responses {
            do {
                let r = try client.readResponse(head: p.head && statuses.isEmpty)
                statuses.append(r.status)
                bodies.append(r.bodyText)
                if [400, 413, 431].contains(r.status) || r.value("Connection")?.lowercased() == "close" { break }
            } catch is TestTimeout {
                hung = true
                break
            } catch {
                break  // closed
            }
        }
        client.shutdownWrite()
        var closed = false
        for _ in 0..<4 where !closed { closed = client.waitForClose() }
        client.close()

        // Two plain requests after it, on a new connection: they reuse the pooled upstream connection.
        var after: [String] = []
        let follow = proxy.client()
        for k in 1...2 {
            let r = try follow.request("GET", "/api/echo/after\(k)")
            after.append(
                "\(r.status) \(r.bodyText.contains("\"target\":\"/api/echo/after\(k)\"") ? "ok" : "WRONG: \(r.bodyText.prefix(120))")"
            )
        }
        follow.close()
        Thread.sleep(forTimeInterval: 0.05)
        let seen = try upstream.receivedRequests()
        let targets = seen.compactMap { $0["target"] as? String }
        let fromPayload = targets.filter { !$0.hasPrefix("/api/echo/after") }
        let result = Result(statuses: statuses, upstreamRequests: fromPayload.count)

        var problems: [String] = []
        // `hung` alone is fine when the payload is accepted: the proxy may wait for body bytes
        // that never come, and the FIN ended it.
        if hung && p.refused { problems.append("no answer within 3 s to a payload that must be refused") }
        if !closed && (p.refused || statuses.contains(400)) { problems.append("connection not closed") }
        if fromPayload.count > p.sent {
            problems.append("upstream saw \(fromPayload.count) requests, client sent \(p.sent): \(fromPayload)")
        }
        if !p.markerAllowed, targets.contains(where: { $0.contains("SMUGGLED") }) {
            problems.append("the hidden request reached the upstream: \(targets)")
        }
        if p.refused {
            if let bad = statuses.first(where: { ![400, 413, 431].contains($0) }) {
                problems.append("expected a refusal, got \(bad)")
            }
            if !fromPayload.isEmpty { problems.append("refused, yet forwarded: \(fromPayload)") }
        }
        if let expected = p.bodyLength, let first = statuses.first, first == 200, !p.head {
            if !bodies[0].contains("\"body_length\":\(expected)") {
                problems.append("upstream body length differs: \(bodies[0].prefix(300))")
            }
        }
        if after != ["200 ok", "200 ok"] { problems.append("the requests after it: \(after)") }
        let upstreamTargets = targets.filter { $0.hasPrefix("/api/echo/after") }
        if upstreamTargets != ["/api/echo/after1", "/api/echo/after2"] {
            problems.append("the upstream saw the requests after it as \(upstreamTargets)")
        }
        return (
            problems.isEmpty ? nil : "\(p.name): " + problems.joined(separator: "; ") + " (statuses \(statuses))",
            result
        )
    }

    @Test func noRequestHidesInsideAnother() throws {
        var failures: [String] = []
        var lines: [String] = []
        for p in Self.payloads() {
            let (failure, r) = try runPayload(p)
            if let failure { failures.append(failure) }
            lines.append(
                "\(p.name): client sent \(p.sent), proxy answered \(r.statuses), upstream saw \(r.upstreamRequests)")
        }
        print("smuggling: \(Self.payloads().count) payloads\n  " + lines.joined(separator: "\n  "))
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        #expect(proxy.process.process.isRunning)
    }
}
