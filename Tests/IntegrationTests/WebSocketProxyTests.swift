import Foundation
import ProxyLog
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// WebSocket through the real proxy to demo-upstream's WebSocket endpoints, as a client on the
/// wire sees it: what passes the tunnel, what the origin check refuses, and the tunnel's life
/// (backpressure, the idle timeout, many at once, shutdown; TLS both sides: +TLS.swift).
@Suite struct WebSocketProxyTests {
    static let app = "https://app.example.com"
    static let evil = "https://evil.example"

    /// `/api/` checks origins (`https://app.example.com`, credentials on); `/report/` and
    /// `/open/` are `enforce report` and `enforce off`; `/nows/` is `websocket off`; `/raw/` is
    /// `cors off`; `/short/` goes to an upstream with `timeout 1s`. The last four strip their
    /// prefix, so they reach the demo's `/ws/…` endpoints.
    static func conf(upstream: String, drainTimeout: String = "10s") -> String {
        """
        listen 127.0.0.1:0
        admin 127.0.0.1:0
        drain_timeout \(drainTimeout)
        upstream api \(upstream)
        upstream short { url \(upstream); timeout 1s }
        cors {
            allow_origin      https://app.example.com
            allow_credentials on
        }
        route /api/    { upstream api }
        route /report/ { upstream api; enforce report; strip_prefix /report }
        route /open/   { upstream api; enforce off; strip_prefix /open }
        route /nows/   { upstream api; websocket off; strip_prefix /nows }
        route /raw/    { upstream api; cors off; strip_prefix /raw }
        route /short/  { upstream short; strip_prefix /short }

        """
    }

    // MARK: Helpers

    func scrape(_ proxy: Proxy) throws -> PrometheusScrape {
        let admin = try #require(proxy.adminPort)
        return try PrometheusScrape(try HTTPClient(port: admin).request("GET", "/metrics").bodyText)
    }

    /// The value of the series `name` with exactly `labels` (nil when absent).
    func metric(_ proxy: Proxy, _ name: String, _ labels: [String: String] = [:]) throws -> Double? {
        try scrape(proxy).samples(named: name).first { $0.labels == labels }?.value
    }

    func websocketRequests(_ proxy: Proxy, route: String, outcome: String) throws -> Double? {
        try metric(
            proxy, "cors_proxy_requests_total", ["route": route, "kind": "websocket", "outcome": outcome])
    }

    /// Polls (bounded) until the open-tunnels gauge reads `value`; returns the last reading.
    @discardableResult
    func waitForTunnels(_ proxy: Proxy, _ value: Double, timeout: Double = 15) throws -> Double? {
        let deadline = Date().addingTimeInterval(timeout)
        var now = try metric(proxy, "cors_proxy_websocket_tunnels")
        while now != value && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
            now = try metric(proxy, "cors_proxy_websocket_tunnels")
        }
        return now
    }

    /// The proxy's log lines for `target`, waiting (bounded) until there are `count`.
    func logLines(_ proxy: Proxy, target: String, count: Int = 1) throws -> [ParsedLogLine] {
        let deadline = Date().addingTimeInterval(15)
        while true {
            let lines = proxy.process.output.compactMap { LogLineParser.parse($0) }.filter { $0["target"] == target }
            if lines.count >= count || Date() > deadline { return lines }
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    static func openDescriptors(_ pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    static func residentKiB(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
    }

    /// One message echoed: sent as `opcode`, back as one frame, unmasked, identical.
    func echo(_ ws: WebSocketClient, _ opcode: UInt8, _ payload: [UInt8]) throws {
        try ws.send(opcode, payload)
        let frame = try ws.readFrame()
        #expect(frame == WebSocketFrame(opcode: opcode, payload: payload), "\(frame)")
    }

    /// The close handshake: our Close with `code` and `reason` comes back as it went, then EOF.
    func closeCleanly(_ ws: WebSocketClient, code: UInt16 = 1000, reason: String = "done") throws {
        try ws.sendClose(code: code, reason: reason)
        let frame = try ws.readFrame()
        #expect(frame.opcode == WebSocketFrame.close && frame.closeCode == code && frame.closeReason == reason)
        #expect(ws.waitForEOF())
    }

    // MARK: The tunnel

    /// Text, binary, a 4 MiB message, a fragmented message with a ping between its fragments,
    /// ping/pong and the close handshake pass untouched; the 101 is the upstream's, header for
    /// header; the handshake arrives with its `Sec-WebSocket-*` headers as sent.
    @Test func messagesPassTheTunnelUntouched() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: Self.conf(upstream: upstream.url))
        let offer = [("Sec-WebSocket-Protocol", "chat, superchat"), ("Sec-WebSocket-Extensions", "x-test; level=3")]
        let (ws, response) = try WebSocketClient.connect(
            port: proxy.port, path: "/api/ws/echo", origin: Self.app, headers: offer)
        try ws.requireSwitched(response)
        #expect(response.statusLine == "HTTP/1.1 101 Switching Protocols")
        #expect(response.values("Sec-WebSocket-Protocol") == ["chat"])
        #expect(response.values("Sec-WebSocket-Extensions") == ["x-test; level=3"])
        #expect(response.corsHeaders == [], "a 101 gets no Access-Control-* header")
        #expect(response.values("Vary") == [])
        // Header for header what the upstream answers when asked directly.
        let (direct, directResponse) = try WebSocketClient.connect(
            port: upstream.port, path: "/api/ws/echo", origin: Self.app, headers: offer)
        direct.close()
        #expect(
            response.headers.map { "\($0.name): \($0.value)" }
                == directResponse.headers.map { "\($0.name): \($0.value)" })

        try echo(ws, WebSocketFrame.text, Array("hello, tunnel".utf8))
        try echo(ws, WebSocketFrame.binary, (0...255).map { UInt8($0) })
        try echo(ws, WebSocketFrame.binary, patternBytes(4 << 20))
        try echo(ws, WebSocketFrame.text, [])

        // A fragmented message with a ping between its fragments: echoed frame by frame.
        try ws.send(WebSocketFrame.text, Array("frag".utf8), fin: false)
        try ws.send(WebSocketFrame.ping, Array("between".utf8))
        try ws.send(WebSocketFrame.continuation, Array("men".utf8), fin: false)
        try ws.send(WebSocketFrame.continuation, Array("ted".utf8))
        var controls: [WebSocketFrame] = []
        let message = try ws.readMessage(controls: &controls)
        #expect(
            message.opcode == WebSocketFrame.text && String(decoding: message.payload, as: UTF8.self) == "fragmented")
        #expect(controls == [WebSocketFrame(opcode: WebSocketFrame.pong, payload: Array("between".utf8))])

        try ws.send(WebSocketFrame.ping, Array("are you there".utf8))
        #expect(try ws.readFrame() == WebSocketFrame(opcode: WebSocketFrame.pong, payload: Array("are you there".utf8)))
        try closeCleanly(ws, code: 4000, reason: "done here")

        // The upstream got the handshake with the Sec-WebSocket-* headers and Origin as sent.
        let received = try upstream.receivedRequests().filter { $0["target"] as? String == "/api/ws/echo" }
        #expect(received.count == 2, "the proxied handshake and the direct one")
        let headers = (received.first?["headers"] as? [[String]] ?? []).map { $0.joined(separator: ": ") }
        for line in [
            "Sec-WebSocket-Protocol: chat, superchat", "Sec-WebSocket-Extensions: x-test; level=3",
            "Sec-WebSocket-Key: \(WebSocketClient.key)", "Sec-WebSocket-Version: 13", "Origin: \(Self.app)",
            "Upgrade: websocket", "Connection: Upgrade", "X-Forwarded-For: 127.0.0.1", "X-Forwarded-Proto: http",
        ] {
            #expect(headers.contains(line), "\(line) in \(headers)")
        }

        #expect(try websocketRequests(proxy, route: "/api/", outcome: "allowed") == 1)
        #expect(try waitForTunnels(proxy, 0) == 0)
        let line = try #require(try logLines(proxy, target: "/api/ws/echo").first)
        #expect(line.event == "access" && line["kind"] == "websocket" && line["status"] == "101")
        #expect(line["outcome"] == "allowed" && line["origin"] == Self.app)
    }

    /// An origin not allowed, malformed, `null` (not listed) or repeated: 403 with `Vary: Origin`
    /// and no CORS header, nothing forwarded, one denial line with kind `websocket` and the
    /// reason code, counted as `kind="websocket",outcome="denied"`.
    @Test func deniedHandshakesAreRefusedBeforeTheUpstream() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: Self.conf(upstream: upstream.url))
        let cases: [(name: String, origins: [String], reason: String)] = [
            ("other", [Self.evil], "origin_not_allowed"),
            ("malformed", ["https://app.example.com:0443"], "malformed_origin"),
            ("null", ["null"], "origin_not_allowed"),
            ("repeated", [Self.app, Self.app], "multiple_origins"),
        ]
        for c in cases {
            let target = "/api/ws/echo?case=\(c.name)"
            let (ws, response) = try WebSocketClient.connect(
                port: proxy.port, path: target, origin: nil, headers: c.origins.map { ("Origin", $0) })
            ws.close()
            #expect(response.statusLine == "HTTP/1.1 403 Forbidden", "\(c.name)")
            #expect(response.values("Vary") == ["Origin"], "\(c.name)")
            #expect(response.corsHeaders == [], "\(c.name)")
            #expect(response.value("Upgrade") == nil && response.body.isEmpty, "\(c.name)")
            let line = try #require(try logLines(proxy, target: target).first, "\(c.name)")
            #expect(line.event == "denial" && line["kind"] == "websocket" && line["status"] == "403", "\(c.name)")
            #expect(line["outcome"] == "denied" && line["reason"] == c.reason, "\(c.name): \(line)")
            #expect(line["route"] == "/api/" && line["upstream"] == nil, "\(c.name)")
        }
        #expect(try upstream.receivedTargets() == [], "no handshake reached the upstream")
        #expect(try websocketRequests(proxy, route: "/api/", outcome: "denied") == 4)
        #expect(try metric(proxy, "cors_proxy_denials_total", ["route": "/api/", "reason": "origin_not_allowed"]) == 2)
        #expect(try metric(proxy, "cors_proxy_denials_total", ["route": "/api/", "reason": "multiple_origins"]) == 1)
        #expect(try metric(proxy, "cors_proxy_tls_handshake_errors_total") == 0)
    }

    /// `enforce report` tunnels a disallowed origin and reports it (a warning line); `enforce
    /// off` tunnels it (an info line). Both count as `reported`.
    @Test func enforceReportAndOffTunnelADisallowedOrigin() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: Self.conf(upstream: upstream.url))
        for (route, level) in [("/report/", "warning"), ("/open/", "info")] {
            let target = "\(route)ws/echo"
            let ws = try WebSocketClient.open(port: proxy.port, path: target, origin: Self.evil)
            try echo(ws, WebSocketFrame.text, Array("through \(route)".utf8))
            try closeCleanly(ws)
            let line = try #require(try logLines(proxy, target: target).first)
            #expect(line.event == "denial" && line.level == level, "\(line)")
            #expect(line["kind"] == "websocket" && line["status"] == "101" && line["outcome"] == "reported")
            #expect(line["reason"] == "origin_not_allowed" && line["upstream"] == "api")
            #expect(try websocketRequests(proxy, route: route, outcome: "reported") == 1)
        }
        #expect(try upstream.receivedTargets() == ["/ws/echo", "/ws/echo"])
    }

    /// `websocket off`: 501 with the CORS headers of a proxy-made answer (403 for an origin not
    /// allowed, as anywhere on the route). Another upgrade (`h2c`)
    /// on a CORS route: 501. A `cors off` route tunnels any origin without a check.
    @Test func websocketOffOtherUpgradesAndCORSOff() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: Self.conf(upstream: upstream.url))
        let (off, refused) = try WebSocketClient.connect(port: proxy.port, path: "/nows/ws/echo", origin: Self.app)
        off.close()
        #expect(refused.statusLine == "HTTP/1.1 501 Not Implemented")
        #expect(
            refused.corsHeaders == [
                "Access-Control-Allow-Origin: \(Self.app)", "Access-Control-Allow-Credentials: true",
            ])
        #expect(refused.values("Vary") == ["Origin"])
        #expect(refused.bodyText == "WebSocket is off for this route (websocket off)\n")
        // The origin check comes first: an origin the route does not allow gets its 403 there too.
        let (offDenied, denied) = try WebSocketClient.connect(
            port: proxy.port, path: "/nows/ws/echo", origin: Self.evil)
        offDenied.close()
        #expect(denied.statusLine == "HTTP/1.1 403 Forbidden" && denied.corsHeaders == [])

        let h2c = try proxy.client().request(
            "GET", "/api/items",
            headers: [
                ("Origin", Self.app), ("Upgrade", "h2c"), ("Connection", "Upgrade, HTTP2-Settings"),
                ("HTTP2-Settings", "AAMAAABkAAQAAP__"),
            ])
        #expect(h2c.status == 501)
        #expect(h2c.values("Access-Control-Allow-Origin") == [Self.app])
        #expect(h2c.bodyText == "upgrade requests are not supported\n")

        let raw = try WebSocketClient.open(port: proxy.port, path: "/raw/ws/echo", origin: Self.evil)
        try echo(raw, WebSocketFrame.text, Array("no check here".utf8))
        try closeCleanly(raw)
        #expect(try upstream.receivedTargets() == ["/ws/echo"], "only the cors off route's handshake")
        #expect(try websocketRequests(proxy, route: "/raw/", outcome: "passthrough") == 1)
    }

    /// An upstream that does not switch protocols: its answer comes back with the route's CORS
    /// headers, and the connection goes on as HTTP/1.1.
    @Test func aNon101AnswerIsAnOrdinaryResponseAndTheConnectionGoesOn() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: Self.conf(upstream: upstream.url))
        let (ws, response) = try WebSocketClient.connect(port: proxy.port, path: "/api/ws/refuse", origin: Self.app)
        #expect(response.status == 403)
        #expect(
            response.corsHeaders == [
                "Access-Control-Allow-Origin: \(Self.app)", "Access-Control-Allow-Credentials: true",
            ])
        #expect(response.values("Vary").joined(separator: ", ").contains("Origin"), "\(response.headers)")
        #expect(response.bodyText == "{\"error\":\"websocket_refused\"}\n")
        #expect(response.value("Connection")?.lowercased() != "close")
        // The same connection: a plain request.
        try ws.write(Array("GET /api/items HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: \(Self.app)\r\n\r\n".utf8))
        let next = try ws.readHandshakeResponse()
        #expect(next.status == 200)
        #expect(next.values("Access-Control-Allow-Origin") == [Self.app])
        #expect(next.bodyText.contains("apple"))
        #expect(try upstream.receivedTargets() == ["/api/ws/refuse", "/api/items"])
        #expect(try waitForTunnels(proxy, 0) == 0)
    }

    // MARK: The tunnel's life

    /// The client reads nothing while the upstream pushes 64 MiB: the proxy's memory stays flat
    /// (the tunnel stops reading the upstream), then every byte arrives, in order, when the client reads.
    @Test func aClientThatDoesNotReadHoldsTheUpstreamBack() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: Self.conf(upstream: upstream.url))
        let pid = proxy.process.process.processIdentifier
        let total = 64 << 20
        let ws = try WebSocketClient.open(port: proxy.port, path: "/api/ws/push/\(total)", origin: Self.app)
        let baseline = Self.residentKiB(pid)
        // Not a synchronisation: the window in which an unbounded proxy would buffer the 64 MiB
        // (it moves far more than that in 1.5 s); RSS is sampled throughout.
        var peak = baseline
        let window = Date().addingTimeInterval(1.5)
        while Date() < window {
            peak = max(peak, Self.residentKiB(pid))
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(peak - baseline < 30 << 10, "RSS grew by \((peak - baseline) >> 10) MiB while the client did not read")

        let period = patternBytes(64 * 1024 + 251)  // the demo pushes messages of 64 KiB
        var received = 0
        while received < total {
            let frame = try ws.readFrame()
            #expect(frame.opcode == WebSocketFrame.binary && frame.fin && !frame.masked)
            let offset = received % 251
            let intact = frame.payload.withUnsafeBytes { got in
                period.withUnsafeBytes { want in
                    frame.payload.count <= want.count - offset
                        && (got.isEmpty || memcmp(got.baseAddress!, want.baseAddress! + offset, got.count) == 0)
                }
            }
            guard intact else {
                Issue.record("the frame at byte \(received) is not the pattern")
                return
            }
            received += frame.payload.count
        }
        #expect(received == total)
        peak = max(peak, Self.residentKiB(pid))
        #expect(peak - baseline < 30 << 10, "RSS grew by \((peak - baseline) >> 10) MiB")
        try closeCleanly(ws)
    }

    /// A tunnel with no byte either way for the upstream's `timeout` (1 s) is closed; one on an
    /// upstream with the default timeout stays open meanwhile.
    @Test func anIdleTunnelIsClosedAfterTheUpstreamsTimeout() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: Self.conf(upstream: upstream.url))
        let patient = try WebSocketClient.open(port: proxy.port, path: "/api/ws/echo", origin: Self.app)
        let idle = try WebSocketClient.open(port: proxy.port, path: "/short/ws/idle", origin: Self.app)
        let opened = Date()
        #expect(idle.waitForEOF())
        let elapsed = Date().timeIntervalSince(opened)
        #expect(elapsed > 0.8 && elapsed < 5, "closed after \(elapsed) s")
        // Logged and counted under the tunnel's route and upstream (its exchange ended with the 101).
        let line = try proxy.process.waitForLine("the tunnel's timeout") { $0.contains("upstream failed") }
        #expect(line.contains("cors.route=/short/") && line.contains("upstream.name=short"), "\(line)")
        #expect(line.contains("upstream.error=timeout"), "\(line)")
        #expect(try metric(proxy, "cors_proxy_upstream_errors_total", ["upstream": "short", "kind": "timeout"]) == 1)
        try echo(patient, WebSocketFrame.text, Array("still here".utf8))
        try closeCleanly(patient)
        #expect(try waitForTunnels(proxy, 0) == 0)
    }

    /// 50 tunnels open at once, each echoing its own messages from its own thread; the gauge
    /// counts them up to 50 and back to 0, and the proxy's descriptors return to the baseline.
    @Test func fiftyTunnelsAtOnce() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: Self.conf(upstream: upstream.url))
        let pid = proxy.process.process.processIdentifier
        // Warm up: a first tunnel, so the baseline holds whatever the first one creates for good.
        let first = try WebSocketClient.open(port: proxy.port, path: "/api/ws/echo", origin: Self.app)
        try closeCleanly(first)
        #expect(try waitForTunnels(proxy, 0) == 0)
        let baseline = Self.openDescriptors(pid)

        let count = 50
        let sockets = try (0..<count).map { _ in
            try WebSocketClient.open(port: proxy.port, path: "/api/ws/echo", origin: Self.app)
        }
        #expect(try metric(proxy, "cors_proxy_websocket_tunnels") == Double(count))
        let failures = LockedList()
        DispatchQueue.concurrentPerform(iterations: count) { i in
            do {
                for j in 0..<20 {
                    let text = "tunnel \(i) message \(j) " + String(repeating: "x", count: i * 37)
                    try sockets[i].sendText(text)
                    let frame = try sockets[i].readFrame()
                    if frame != WebSocketFrame(opcode: WebSocketFrame.text, payload: Array(text.utf8)) {
                        failures.append("tunnel \(i): \(frame) for message \(j)")
                    }
                }
                // Half close cleanly, half just go away.
                if i % 2 == 0 {
                    try sockets[i].sendClose(code: 1000)
                    _ = try sockets[i].readFrame()
                }
                sockets[i].close()
            } catch {
                failures.append("tunnel \(i): \(error)")
            }
        }
        #expect(failures.items == [])
        #expect(try waitForTunnels(proxy, 0) == 0)
        let deadline = Date().addingTimeInterval(15)
        var now = Self.openDescriptors(pid)
        while now > baseline && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
            now = Self.openDescriptors(pid)
        }
        #expect(now <= baseline, "descriptors: \(baseline) before, \(now) after")
        #expect(try websocketRequests(proxy, route: "/api/", outcome: "allowed") == Double(count + 1))
    }

    // MARK: Shutdown

    /// SIGTERM with a tunnel open and `drain_timeout 1s`: after the drain time the client gets a
    /// Close frame with 1001 (going away), both sides are closed, and the process exits 0.
    @Test func sigtermSendsGoingAwayAfterTheDrainTime() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: Self.conf(upstream: upstream.url, drainTimeout: "1s"))
        let ws = try WebSocketClient.open(port: proxy.port, path: "/api/ws/echo", origin: Self.app)
        try echo(ws, WebSocketFrame.text, Array("before".utf8))
        let signalled = Date()
        proxy.process.signal(SIGTERM)
        let frame = try ws.readFrame()
        let elapsed = Date().timeIntervalSince(signalled)
        #expect(frame.opcode == WebSocketFrame.close && frame.closeCode == 1001 && !frame.masked, "\(frame)")
        #expect(elapsed > 0.9, "the Close came \(elapsed) s after SIGTERM, before the drain time")
        #expect(ws.waitForEOF())
        #expect(try proxy.process.waitForExit() == 0)
        // The upstream's side is closed too (its count includes the /__stats call's own connection).
        let deadline = Date().addingTimeInterval(10)
        var open = try upstream.stats()["open_connections"]
        while open != 1 && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
            open = try upstream.stats()["open_connections"]
        }
        #expect(open == 1)
    }

    /// A tunnel that ends by itself within the drain time ends the process as soon as it ends.
    @Test func aTunnelThatEndsDuringTheDrainEndsTheProcess() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: Self.conf(upstream: upstream.url, drainTimeout: "30s"))
        let ws = try WebSocketClient.open(port: proxy.port, path: "/api/ws/echo", origin: Self.app)
        proxy.process.signal(SIGTERM)
        try proxy.process.waitForLine("the draining line") { $0.contains("draining") }
        // Still a tunnel while the proxy drains.
        try echo(ws, WebSocketFrame.text, Array("during the drain".utf8))
        let closed = Date()
        try closeCleanly(ws)
        #expect(try proxy.process.waitForExit(timeout: 20) == 0)
        let elapsed = Date().timeIntervalSince(closed)
        #expect(elapsed < 5, "exited \(elapsed) s after the tunnel closed (drain_timeout is 30 s)")
    }
}

/// Failures collected from several threads.
final class LockedList: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func append(_ item: String) { lock.withLock { list.append(item) } }
    var items: [String] { lock.withLock { list } }
}
