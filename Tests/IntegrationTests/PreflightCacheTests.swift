import Foundation
import TestSupport
import Testing

/// Allowed preflights are rendered once per route and request shape, then reused
/// (`PreflightResponseCache`). What a user relies on: a reused answer is exactly the
/// fresh one, it is never handed to a different request, every request is still
/// counted, and a reload takes effect at once.
@Suite(.serialized)
final class PreflightCacheTests {
    let app = "https://app.example.com"

    private func preflight(
        _ client: HTTPClient, origin: String, method: String = "PUT", headers: String? = "x-custom, content-type",
        extra: [(String, String)] = []
    ) throws -> HTTPResponse {
        var fields = [("Origin", origin), ("Access-Control-Request-Method", method)]
        if let headers { fields.append(("Access-Control-Request-Headers", headers)) }
        return try client.request("OPTIONS", "/api/items", headers: fields + extra)
    }

    @Test func aRepeatedPreflightGetsTheSameAnswerAndEachShapeItsOwn() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: standardConf(upstream: upstream.url, admin: true))
        let client = proxy.client()
        let first = try preflight(client, origin: app)
        #expect(first.status == 204)
        for _ in 0..<3 {
            let again = try preflight(client, origin: app)
            #expect(again.status == first.status)
            #expect(again.headers.map { "\($0.name): \($0.value)" } == first.headers.map { "\($0.name): \($0.value)" })
        }
        // Another allowed origin on the same route and connection gets its own ACAO.
        let other = try preflight(client, origin: "https://tenant.example.org")
        #expect(other.values("Access-Control-Allow-Origin") == ["https://tenant.example.org"])
        #expect(try preflight(client, origin: app).values("Access-Control-Allow-Origin") == [app])
        // Another method or header list is decided on its own: not allowed stays not allowed.
        #expect(try preflight(client, origin: app, method: "PATCH").status == 403)
        #expect(try preflight(client, origin: app, headers: "x-other").status == 403)
        #expect(try preflight(client, origin: app, headers: nil).values("Access-Control-Allow-Headers").isEmpty)
        // A denied origin is never served from an earlier allowed answer, and is logged each time.
        #expect(try preflight(client, origin: "https://evil.example").status == 403)
        #expect(try preflight(client, origin: "https://evil.example").status == 403)
        #expect(try upstream.receivedTargets().isEmpty)

        let admin = try #require(proxy.adminPort)
        let metrics = try HTTPClient(port: admin).request("GET", "/metrics").bodyText
        #expect(
            metrics.contains(#"cors_proxy_requests_total{route="/api/",kind="preflight",outcome="allowed"} 7"#),
            "\(metrics)")
        #expect(
            metrics.contains(#"cors_proxy_requests_total{route="/api/",kind="preflight",outcome="denied"} 4"#),
            "\(metrics)")
        #expect(
            metrics.contains(#"cors_proxy_denials_total{route="/api/",reason="origin_not_allowed"} 2"#), "\(metrics)")
    }

    @Test func aClosingRequestGetsConnectionCloseAfterTheAnswerWasReused() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: standardConf(upstream: upstream.url))
        let client = proxy.client()
        #expect(try preflight(client, origin: app).value("Connection") == nil)
        #expect(try preflight(client, origin: app).value("Connection") == nil)
        let last = try preflight(client, origin: app, extra: [("Connection", "close")])
        #expect(last.status == 204)
        #expect(last.value("Connection") == "close")
        #expect(client.waitForClose())
        // The closing answer did not replace the reusable one.
        #expect(try preflight(proxy.client(), origin: app).value("Connection") == nil)
    }

    @Test func aReloadReplacesReusedAnswers() throws {
        let upstream = try Upstream()
        let conf = standardConf(upstream: upstream.url)
        let proxy = try Proxy(conf: conf)
        let client = proxy.client()
        #expect(try preflight(client, origin: app).value("Access-Control-Max-Age") == "600")
        #expect(try preflight(client, origin: app).value("Access-Control-Max-Age") == "600")

        try proxy.rewrite(conf: conf.replacingOccurrences(of: "max_age           10m", with: "max_age           20s"))
        proxy.process.signal(SIGHUP)
        try proxy.process.waitForLine("reload") { $0.contains("conf reloaded") }
        #expect(try preflight(client, origin: app).value("Access-Control-Max-Age") == "20")

        try proxy.rewrite(conf: conf.replacingOccurrences(of: "https://app.example.com https://", with: "https://"))
        proxy.process.signal(SIGHUP)
        let deadline = Date().addingTimeInterval(20)
        while proxy.process.output.filter({ $0.contains("conf reloaded") }).count < 2 && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
        #expect(try preflight(client, origin: app).status == 403)
    }
}
