import Foundation
import TestSupport
import Testing

/// docs/DESIGN.md "Request handling" end to end: a real upstream process, the real binary, raw sockets.
@Suite(.serialized)
final class ProxyBehaviourTests {
    let upstream: Upstream
    let proxy: Proxy

    init() throws {
        upstream = try Upstream()
        proxy = try Proxy(conf: standardConf(upstream: upstream.url))
    }

    let app = "https://app.example.com"

    @Test func allowedPreflightIsAnsweredLocally() throws {
        let r = try proxy.client().request(
            "OPTIONS", "/api/items",
            headers: [
                ("Origin", app), ("Access-Control-Request-Method", "PUT"),
                ("Access-Control-Request-Headers", "x-custom, content-type"),
            ])
        #expect(r.status == 204)
        #expect(r.values("Access-Control-Allow-Origin") == [app])
        #expect(r.value("Access-Control-Allow-Credentials") == "true")
        #expect(r.value("Access-Control-Allow-Methods")?.contains("PUT") == true)
        let allowed = (r.value("Access-Control-Allow-Headers") ?? "").lowercased()
        #expect(allowed.contains("x-custom") && allowed.contains("content-type"))
        #expect(r.value("Access-Control-Max-Age") == "600")
        #expect(r.value("Vary") == "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
        #expect(r.value("Content-Length") == nil)
        #expect(try upstream.receivedTargets().contains("/api/items") == false)
    }

    @Test(arguments: [
        ("https://evil.example.com", "PUT", ""),  // origin
        ("https://app.example.com", "PATCH", ""),  // method
        ("https://app.example.com", "PUT", "X-Other"),  // header
        ("https://example.org", "GET", ""),  // bare domain of a wildcard
        ("https://evilexample.org", "GET", ""),
        ("https://app.example.com.evil.com", "GET", ""),
        ("http://app.example.com", "GET", ""),  // scheme
    ])
    func deniedPreflightIs403WithoutAllowHeaders(origin: String, method: String, header: String) throws {
        try upstream.reset()
        var headers = [("Origin", origin), ("Access-Control-Request-Method", method)]
        if !header.isEmpty { headers.append(("Access-Control-Request-Headers", header)) }
        let r = try proxy.client().request("OPTIONS", "/api/items", headers: headers)
        #expect(r.status == 403)
        #expect(r.headers.filter { $0.name.lowercased().hasPrefix("access-control-allow-") }.isEmpty)
        #expect(r.value("Vary") == "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
        #expect(try upstream.receivedTargets().isEmpty)
    }

    @Test func allowedActualRequestGetsOurHeadersOnly() throws {
        let r = try proxy.client().request("GET", "/api/headers-with-cors", headers: [("Origin", app)])
        #expect(r.status == 200)
        #expect(r.values("Access-Control-Allow-Origin") == [app])
        #expect(r.values("Access-Control-Allow-Credentials") == ["true"])
        #expect(r.values("Access-Control-Expose-Headers") == ["X-Request-Id"])
        #expect(r.values("Vary") == ["Accept-Encoding, Origin"])
    }

    @Test func wildcardRouteSendsStarAndNoVary() throws {
        let r = try proxy.client().request("GET", "/api/public/items", headers: [("Origin", "https://anyone.test")])
        #expect(r.status == 200)
        #expect(r.values("Access-Control-Allow-Origin") == ["*"])
        #expect(r.values("Access-Control-Allow-Credentials").isEmpty)
        #expect(!(r.value("Vary") ?? "").contains("Origin"))
    }

    @Test func disallowedActualRequestNeverReachesTheUpstream() throws {
        try upstream.reset()
        let r = try proxy.client().request(
            "POST", "/api/items", headers: [("Origin", "https://evil.example")], body: Array("x".utf8))
        #expect(r.status == 403)
        #expect(r.corsHeaders.isEmpty)
        #expect(r.value("Vary")?.contains("Origin") == true)
        #expect(try upstream.receivedTargets().isEmpty)
    }

    @Test func malformedAndRepeatedOriginsAreNeverAllowed() throws {
        try upstream.reset()
        for origins in [
            ["https://app.example.com/"], ["https://app.example.com", "https://app.example.com"],
            ["https://app.example.com https://x.example.org"], ["https://app.example.com:0443"],
            // Was a crash: an all-digit label's value was added up into an Int, which overflowed.
            ["http://" + String(repeating: "9", count: 60) + ".0.0.1"], ["http://" + String(repeating: "1", count: 63)],
        ] {
            let r = try proxy.client().request("GET", "/api/items", headers: origins.map { ("Origin", $0) })
            #expect(r.status == 403, "\(origins)")
            #expect(r.corsHeaders.isEmpty)
        }
        #expect(try upstream.receivedTargets().isEmpty)
    }

    @Test func enforceReportForwardsWithoutCORSHeaders() throws {
        try upstream.reset()
        let r = try proxy.client().request(
            "GET", "/report/headers-with-cors", headers: [("Origin", "https://evil.example")])
        #expect(r.status == 200)
        #expect(r.corsHeaders.isEmpty)
        #expect(try upstream.receivedTargets() == ["/headers-with-cors"])
    }

    @Test func noOriginAndSameOriginAreForwardedWithVary() throws {
        let plain = try proxy.client().request("GET", "/api/items")
        #expect(plain.status == 200)
        #expect(plain.corsHeaders.isEmpty)
        #expect(plain.value("Vary")?.contains("Origin") == true)
        let same = try proxy.client().request(
            "POST", "/api/items", headers: [("Origin", "http://127.0.0.1:\(proxy.port)")], body: Array("{}".utf8),
            host: "127.0.0.1:\(proxy.port)")
        #expect(same.status == 200)
        #expect(same.corsHeaders.isEmpty)
    }

    @Test func corsOffPassesUpstreamHeadersUntouched() throws {
        let r = try proxy.client().request(
            "GET", "/raw/headers-with-cors", headers: [("Origin", "https://evil.example")])
        #expect(r.status == 200)
        #expect(r.values("Access-Control-Allow-Origin") == ["https://upstream.example"])
        #expect(r.values("Vary") == ["Accept-Encoding"])
    }

    @Test func noRouteIs404WithTopLevelCORSHeadersWhenAllowed() throws {
        let allowed = try proxy.client().request("GET", "/nowhere", headers: [("Origin", app)])
        #expect(allowed.status == 404)
        #expect(allowed.values("Access-Control-Allow-Origin") == [app])
        let denied = try proxy.client().request("GET", "/nowhere", headers: [("Origin", "https://evil.example")])
        #expect(denied.status == 404)
        #expect(denied.corsHeaders.isEmpty)
    }

    @Test func forwardingIsFaithful() throws {
        try upstream.reset()
        let target = "/api/echo/a%2Fb/../c?q=1&q=2&x=%20"
        let r = try proxy.client().request(
            "DELETE", target,
            headers: [
                ("Origin", app), ("X-Forwarded-For", "10.1.1.1"), ("X-Forwarded-Proto", "https"), ("Cookie", "a=1"),
                ("Cookie", "b=2"), ("Connection", "X-Hop"), ("X-Hop", "1"), ("Keep-Alive", "timeout=5"),
            ], host: "front.example:8080")
        #expect(r.status == 200)
        let received = try #require(try upstream.receivedRequests().last)
        #expect(received["method"] as? String == "DELETE")
        #expect(received["target"] as? String == "/api/echo/a%2Fb/../c?q=1&q=2&x=%20")
        let headers = (received["headers"] as? [[String]] ?? []).map { "\($0[0]): \($0[1])" }
        #expect(headers.contains("Host: 127.0.0.1:\(upstream.port)"))
        #expect(headers.contains("X-Forwarded-For: 10.1.1.1, 127.0.0.1"))
        #expect(headers.contains("X-Forwarded-Proto: http"))
        #expect(headers.contains("X-Forwarded-Host: front.example:8080"))
        #expect(headers.filter { $0.hasPrefix("Cookie:") } == ["Cookie: a=1", "Cookie: b=2"])
        for hop in ["X-Hop", "Keep-Alive", "Connection", "Accept", "Expect", "User-Agent"] {
            #expect(!headers.contains { $0.lowercased().hasPrefix(hop.lowercased() + ":") }, "\(hop) was forwarded")
        }
    }

    @Test func anyMethodTokenIsForwardedOnAPassThroughRoute() throws {
        try upstream.reset()
        let r = try proxy.client().request("PROPFIND", "/raw/echo", headers: [("Origin", app)])
        #expect(r.status == 200)
        #expect(try upstream.receivedRequests().last?["method"] as? String == "PROPFIND")
    }

    @Test func stripPrefixAndQueryAreApplied() throws {
        try upstream.reset()
        _ = try proxy.client().request("GET", "/raw/echo?x=1")
        #expect(try upstream.receivedTargets() == ["/echo?x=1"])
    }

    @Test func unreachableUpstreamIs502WithCORSHeaders() throws {
        let r = try proxy.client().request("GET", "/dead/x", headers: [("Origin", app)])
        #expect(r.status == 502)
        #expect(r.values("Access-Control-Allow-Origin") == [app])
        #expect(r.value("Vary")?.contains("Origin") == true)
    }

    @Test func slowUpstreamIs504WithCORSHeaders() throws {
        let r = try proxy.client().request("GET", "/slow/slow/3000", headers: [("Origin", app)])
        #expect(r.status == 504)
        #expect(r.values("Access-Control-Allow-Origin") == [app])
    }

    @Test func bodyOverLimitIs413BeforeForwarding() throws {
        try upstream.reset()
        let client = proxy.client()
        try client.send("POST /api/upload HTTP/1.1\r\nHost: x\r\nOrigin: \(app)\r\nContent-Length: 2000000\r\n\r\n")
        let r = try client.readResponse()
        #expect(r.status == 413)
        #expect(r.values("Access-Control-Allow-Origin") == [app])
        #expect(try upstream.receivedTargets().isEmpty)
    }

    @Test func chunkedBodyOverLimitIs413() throws {
        let client = proxy.client()
        try client.send(
            "POST /api/slow/2000 HTTP/1.1\r\nHost: x\r\nOrigin: \(app)\r\nTransfer-Encoding: chunked\r\n\r\n")
        let chunk = String(repeating: "a", count: 65536)
        var status = 0
        do {
            for _ in 0..<20 { try client.send(String(65536, radix: 16) + "\r\n" + chunk + "\r\n") }
            status = try client.readResponse().status
        } catch {
            status = (try? client.readResponse().status) ?? -1
        }
        #expect(status == 413)
    }

    @Test(arguments: [
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET /api/x HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
        "GET /api/x HTTP/1.1\nHost: x\n\n",
        "POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ])
    func malformedRequestsGet400AndClose(_ raw: String) throws {
        try upstream.reset()
        let client = proxy.client()
        try client.send(raw)
        let r = try client.readResponse()
        #expect(r.status == 400)
        #expect(client.waitForClose())
        #expect(try upstream.receivedTargets().isEmpty)
    }

    @Test func hugeHeadIs431WithCORSHeaders() throws {
        let client = proxy.client()
        try client.send(
            "GET /api/x HTTP/1.1\r\nHost: x\r\nOrigin: \(app)\r\nX-Big: \(String(repeating: "b", count: 40000))\r\n\r\n"
        )
        let r = try client.readResponse()
        #expect(r.status == 431)
        #expect(r.values("Access-Control-Allow-Origin") == [app])
        #expect(r.value("Vary")?.contains("Origin") == true)
    }

    @Test func malformedRequestFromAnAllowedOriginIs400WithCORSHeaders() throws {
        let client = proxy.client()
        try client.send(
            "POST /api/items HTTP/1.1\r\nHost: x\r\nOrigin: \(app)\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
        let r = try client.readResponse()
        #expect(r.status == 400)
        #expect(r.values("Access-Control-Allow-Origin") == [app])
        let denied = proxy.client()
        try denied.send("POST /api/items HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\nX: a\r\n b\r\n\r\n")
        let d = try denied.readResponse()
        #expect(d.status == 400)
        #expect(d.corsHeaders.isEmpty)
    }

    @Test func keepAliveBothSides() throws {
        let before = try upstream.stats()["connections_accepted"] ?? 0
        let client = proxy.client()
        for _ in 0..<100 {
            let r = try client.request("GET", "/api/items", headers: [("Origin", app)])
            #expect(r.status == 200)
        }
        let after = try upstream.stats()["connections_accepted"] ?? 0
        #expect(after - before <= 4, "upstream connections opened: \(after - before)")
    }

    @Test func requestsWithBodiesKeepTheConnectionAlive() throws {
        let client = proxy.client()
        for _ in 0..<3 {
            let r = try client.request("POST", "/api/upload", headers: [("Origin", app)], body: Array("hello".utf8))
            #expect(r.status == 200)
            #expect(r.value("Connection") == nil)
        }
        try client.send(
            "PUT /api/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        #expect(try client.readResponse().status == 200)
        #expect(try client.request("GET", "/api/items").status == 200)
    }

    @Test func pipelinedRequestsAnsweredInOrder() throws {
        let client = proxy.client()
        try client.send(
            "GET /api/status/201 HTTP/1.1\r\nHost: x\r\n\r\nOPTIONS /api/x HTTP/1.1\r\nHost: x\r\nOrigin: \(app)\r\nAccess-Control-Request-Method: GET\r\n\r\nGET /api/status/202 HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        #expect(try client.readResponse().status == 201)
        #expect(try client.readResponse().status == 204)
        #expect(try client.readResponse().status == 202)
    }

    @Test func headRequestHasNoBody() throws {
        let client = proxy.client()
        let r = try client.request("HEAD", "/api/bytes/1000")
        #expect(r.status == 200)
        #expect(r.value("Content-Length") == "1000")
        // The connection is still in sync: a second request works.
        #expect(try client.request("GET", "/api/status/200").status == 200)
    }

    @Test func upstreamResetMidBodyClosesTheClientConnection() throws {
        let client = proxy.client()
        #expect(throws: ConnectionClosed.self) {
            _ = try client.request("GET", "/api/reset-mid-body")
        }
    }

    @Test(arguments: [false, true])
    func largeDownloadIsIntact(chunked: Bool) throws {
        let size = 64 << 20
        let client = proxy.client()
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var count = 0
        try client.send("GET /api/bytes/\(size)\(chunked ? "?chunked=1" : "") HTTP/1.1\r\nHost: x\r\n\r\n")
        let r = try client.readResponse { slice in
            hash = fnv1a64(slice, seed: hash)
            count += slice.count
        }
        #expect(r.status == 200)
        #expect(count == size)
        #expect(hash == patternHash(size))
    }

    @Test(arguments: [false, true])
    func largeUploadIsIntact(chunked: Bool) throws {
        let size = 64 << 20
        let client = proxy.client()
        let block = patternBytes(1 << 20)
        var expected: UInt64 = 0xcbf2_9ce4_8422_2325
        for _ in 0..<(size >> 20) { expected = fnv1a64(block, seed: expected) }
        if chunked {
            try client.send("POST /big/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in 0..<(size >> 20) {
                try client.send(Array((String(block.count, radix: 16) + "\r\n").utf8) + block + Array("\r\n".utf8))
            }
            try client.send("0\r\n\r\n")
        } else {
            try client.send("POST /big/upload HTTP/1.1\r\nHost: x\r\nContent-Length: \(size)\r\n\r\n")
            for _ in 0..<(size >> 20) { try client.send(block) }
        }
        let r = try client.readResponse()
        #expect(r.status == 200)
        #expect(r.bodyText.contains("\"bytes\":\(size)"))
        #expect(r.bodyText.contains(hex16(expected)))
    }
    @Test func expectContinueGets100ThenTheResponse() throws {
        let client = proxy.client()
        try client.send("POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        // The interim 100 arrives before we send the body; readResponse skips it after reading it.
        try client.send("hello")
        let r = try client.readResponse()
        #expect(r.status == 200)
        #expect(r.bodyText.contains("\"bytes\":5"))
        let received = try #require(try upstream.receivedRequests().last)
        let headers = (received["headers"] as? [[String]] ?? []).map { $0[0].lowercased() }
        #expect(!headers.contains("expect"))
    }

    @Test func anUpgradeOtherThanWebSocketOnACORSRouteIs501AndNotForwarded() throws {
        try upstream.reset()
        let r = try proxy.client().request(
            "GET", "/api/ws", headers: [("Connection", "Upgrade"), ("Upgrade", "h2c"), ("Origin", app)])
        #expect(r.status == 501)
        #expect(r.values("Access-Control-Allow-Origin") == [app])
        #expect(try upstream.receivedTargets().isEmpty)
    }

    @Test func compressedBodiesPassThroughUndecoded() throws {
        let r = try proxy.client().request("GET", "/api/gzip", headers: [("Accept-Encoding", "gzip")])
        #expect(r.status == 200)
        #expect(r.value("Content-Encoding") == "gzip")
        #expect(Array(r.body.prefix(2)) == [0x1f, 0x8b])
    }

    @Test func upstreamVaryStarIsKept() throws {
        let r = try proxy.client().request("GET", "/api/vary-star", headers: [("Origin", app)])
        #expect(r.values("Vary") == ["*"])
        #expect(r.values("Access-Control-Allow-Origin") == [app])
    }

    @Test func noContentAndNotModifiedHaveNoBody() throws {
        let client = proxy.client()
        let r204 = try client.request("GET", "/api/status/204")
        #expect(r204.status == 204)
        #expect(r204.value("Transfer-Encoding") == nil)
        let r304 = try client.request("GET", "/api/status/304")
        #expect(r304.status == 304)
        // Still in sync after two bodiless responses.
        #expect(try client.request("GET", "/api/status/200").status == 200)
    }

    @Test func theUpstreamsReasonPhrasePassesThroughAndTheProxysOwnAreStandard() throws {
        let client = proxy.client()
        let r422 = try client.request("GET", "/api/status/422")
        #expect(r422.status == 422)
        #expect(r422.reason == "Unprocessable Entity")
        let r418 = try client.request("GET", "/api/status/418")
        #expect(r418.reason == "I'm a teapot")
        let r502 = try proxy.client().request("GET", "/dead/x", headers: [("Origin", "https://app.example.com")])
        #expect(r502.status == 502)
        #expect(r502.reason == "Bad Gateway")
        let r413 = try proxy.client().request("POST", "/api/echo", body: Array(repeating: 0x61, count: (1 << 20) + 1))
        #expect(r413.status == 413)
        #expect(r413.reason == "Content Too Large")
    }

    @Test func repeatedResponseHeadersKeepTheirOrder() throws {
        let r = try proxy.client().request("GET", "/api/set-cookie")
        #expect(r.values("Set-Cookie").count == 2)
    }

    @Test func http10ClientGetsACompleteResponse() throws {
        let client = proxy.client()
        try client.send("GET /api/bytes/1000?chunked=1 HTTP/1.0\r\n\r\n")
        let r = try client.readResponse()
        #expect(r.status == 200)
        #expect(r.body.count == 1000)
        #expect(r.value("Transfer-Encoding") == nil)
    }
}
