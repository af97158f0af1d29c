// End-to-end WebSocket: headless Chromium opens sockets through the proxy from another origin.
//
// One run serves the tests below: demo-upstream (API and pages), a proxy with `drain_timeout 1s`,
// and Chromium on Pages/websocket.html, whose script opens three sockets one after the other:
// an allowed echo, a hijacking attempt from an origin the route does not allow, and one that is
// open when the test sends the proxy SIGTERM. Chromium runs without a virtual time budget (it
// does not work with WebSocket events); how the page keeps Chromium from dumping the DOM before
// the sockets report, bounded in real time: Pages/websocket.js.

import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// What one socket saw, as the page recorded it.
struct SocketOutcome: Decodable, Sendable {
    var opened: Bool
    var messages: [String]
    var error: Bool
    var protocolName: String?
    var closeCode: Int?
    var closeReason: String?

    enum CodingKeys: String, CodingKey {
        case opened, messages, error, closeCode, closeReason
        case protocolName = "protocol"
    }
}

struct WebSocketPageResults: Decodable, Sendable {
    var origin: String
    var echo: SocketOutcome?
    var hijack: SocketOutcome?
    var goingAway: SocketOutcome?
    /// Every socket reported before the page's real-time bound (Pages/websocket.js).
    var done: Bool
    var pageError: String?
}

/// Everything the WebSocket browser run produced.
struct WebSocketBrowserRun: Sendable {
    var sitePort: Int
    var results: WebSocketPageResults
    /// The whole results JSON, for failure messages.
    var json: String
    var upstreamRequests: [RecordedRequest]
    var proxyOutput: [String]
    var proxyExitStatus: Int32

    static func conf(apiPort: Int, sitePort: Int) -> String {
        """
        listen 127.0.0.1:0
        admin  127.0.0.1:0
        drain_timeout 1s

        upstream api http://127.0.0.1:\(apiPort)

        cors {
            allow_origin      http://127.0.0.1:\(sitePort)
            allow_credentials on
        }
        route /api/private/ { upstream api; allow_origin https://admin.example.com }
        route /api/       { upstream api }
        """
    }

    static func perform() throws -> WebSocketBrowserRun {
        _ = try Chromium.executable()
        let upstream = try DemoUpstream(siteDirectory: BrowserRun.pagesDirectory)
        defer { upstream.process.stop() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cors-proxy-browser-ws-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let proxy = try ProxyProcess(
            conf: conf(apiPort: upstream.apiPort, sitePort: upstream.sitePort), directory: directory)
        defer { proxy.process.stop() }

        let url = "http://127.0.0.1:\(upstream.sitePort)/websocket.html?proxy=\(proxy.port)&api=\(upstream.apiPort)"
        var exitStatus: Int32 = -1
        let dom = try Chromium.dumpDOM(url: url, virtualTimeBudgetMilliseconds: nil) {
            // The third socket is open once the proxy has logged its 101: then SIGTERM. If it never
            // opens, the page's results (dumped at its real-time bound) show how far it got.
            let opened = try? proxy.process.waitForLine("the 101 of /api/ws/idle", timeout: 40) {
                $0.contains("target=/api/ws/idle") && $0.contains("status=101")
            }
            guard opened != nil else { return }
            proxy.process.signal(SIGTERM)
            exitStatus = (try? proxy.process.waitForExit(timeout: 20)) ?? -1
        }
        guard let json = Chromium.textContent(ofElement: "pre", id: "results", in: dom), json != "pending" else {
            throw BrowserTestFailure("the page wrote no results before Chromium dumped the DOM:\n\(dom)")
        }
        let results: WebSocketPageResults
        do {
            results = try JSONDecoder().decode(WebSocketPageResults.self, from: Data(json.utf8))
        } catch {
            throw BrowserTestFailure("results are not what the test expects (\(error)):\n\(json)")
        }
        let log = try httpRequest(port: upstream.apiPort, "GET", "/__requests")
        return WebSocketBrowserRun(
            sitePort: upstream.sitePort, results: results, json: json,
            upstreamRequests: try JSONDecoder().decode([RecordedRequest].self, from: log.body),
            proxyOutput: proxy.process.output, proxyExitStatus: exitStatus)
    }
}

/// Runs the WebSocket page once per test process, on its own thread (it blocks on child processes).
actor WebSocketBrowserFixture {
    static let shared = WebSocketBrowserFixture()
    private var run: Task<WebSocketBrowserRun, any Error>?

    func get() async throws -> WebSocketBrowserRun {
        if let run { return try await run.value }
        let task = Task<WebSocketBrowserRun, any Error> {
            try await withCheckedThrowingContinuation { continuation in
                let thread = Thread { continuation.resume(with: Result { try WebSocketBrowserRun.perform() }) }
                thread.name = "WebSocketBrowserTests"
                thread.start()
            }
        }
        run = task
        return try await task.value
    }
}

@Suite("Browser (headless Chromium) → cors-proxy → demo API, WebSocket")
struct WebSocketBrowserTests {
    func browser() async throws -> WebSocketBrowserRun { try await WebSocketBrowserFixture.shared.get() }

    @Test("a page on an allowed origin opens a socket through the proxy and gets its echo")
    func allowedOriginEchoes() async throws {
        let run = try await browser()
        #expect(run.results.origin == "http://127.0.0.1:\(run.sitePort)")
        let echo = try #require(run.results.echo, "\(run.json)")
        #expect(echo.opened && !echo.error, "\(run.json)")
        #expect(echo.messages == ["hello through the proxy"], "\(run.json)")
        #expect(echo.closeCode == 1000 && echo.closeReason == "done", "\(run.json)")
        let handshake = run.upstreamRequests.first { $0.target == "/api/ws/echo" }
        #expect(handshake?.header("Origin") == run.results.origin, "\(run.upstreamRequests.map(\.target))")
    }

    @Test("a page on another origin gets onclose 1006, and the upstream never sees the handshake")
    func crossSiteHijackingIsStopped() async throws {
        let run = try await browser()
        let hijack = try #require(run.results.hijack, "\(run.json)")
        #expect(!hijack.opened && hijack.error, "\(run.json)")
        #expect(hijack.closeCode == 1006, "\(run.json)")
        let targets = run.upstreamRequests.map(\.target)
        #expect(!targets.contains { $0.contains("/private/") }, "upstream saw \(targets)")
        let denial = run.proxyOutput.first { $0.contains("target=/api/private/ws/echo") }
        #expect(denial?.contains("kind=websocket") == true, "\(denial ?? "no log line")")
        #expect(denial?.contains("reason=origin_not_allowed") == true, "\(denial ?? "no log line")")
    }

    @Test("after SIGTERM an open socket sees onclose 1001 (going away), and the proxy exits 0")
    func shutdownClosesWithGoingAway() async throws {
        let run = try await browser()
        let socket = try #require(run.results.goingAway, "\(run.json)")
        #expect(socket.opened, "\(run.json)")
        #expect(socket.closeCode == 1001, "\(run.json)")
        #expect(run.results.done && run.results.pageError == nil, "\(run.json)")
        #expect(run.proxyExitStatus == 0)
    }
}
