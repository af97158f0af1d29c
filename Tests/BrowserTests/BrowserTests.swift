// End-to-end: a real browser (headless Chromium) calls the proxy from another origin.
//
// One browser run serves every test below: demo-upstream (the API on one port, the pages of
// Tests/BrowserTests/Pages on another: the page's origin), cors-proxy in front of both, and
// Chromium loading cors.html?proxy=PORT, whose script runs the fetch() calls one after the
// other and writes their outcomes into the DOM (see Support/Chromium.swift for why this
// driver). What the upstream received and the proxy's metrics are captured before the
// processes stop; each @Test then checks one behaviour against that record.

import Foundation
import TestSupport
import Testing

/// One fetch() as the page's script saw it.
struct FetchOutcome: Decodable, Sendable {
    var ok: Bool
    var status: Int?
    /// `for (const [name, value] of response.headers)`: the headers the script may read.
    var headers: [String: String]?
    /// `response.headers.get(name)` for the names the page asked about (null: not readable).
    var probes: [String: String?]?
    var body: String?
    /// `TypeError: Failed to fetch` when the browser refused the response.
    var error: String?
    /// The page's origin (the same-origin iframe reports its own).
    var origin: String?

    var summary: String {
        ok ? "status \(status ?? -1), body \(body ?? "")" : "error \(error ?? "?")"
    }
}

struct PageResults: Decodable, Sendable {
    var origin: String
    var allowedGet: FetchOutcome
    var deniedOrigin: FetchOutcome
    var preflightedPut: FetchOutcome
    var credentialsOn: FetchOutcome
    var publicWithoutCredentials: FetchOutcome
    var credentialsOff: FetchOutcome
    var badGateway: FetchOutcome
    var sameOriginPost: FetchOutcome
}

struct RecordedRequest: Decodable, Sendable {
    var method: String
    var target: String
    var headers: [[String]]

    func header(_ name: String) -> String? {
        headers.first { $0.count == 2 && $0[0].lowercased() == name.lowercased() }?[1]
    }
}

/// Everything one browser run produced.
struct BrowserRun: Sendable {
    var sitePort: Int
    var proxyPort: Int
    var results: PageResults
    /// What demo-upstream received (its `/__requests`), in order.
    var upstreamRequests: [RecordedRequest]
    /// The proxy's `/metrics` text after the run.
    var metrics: String
    /// The headers the demo API sends on `GET /items` when asked directly.
    var upstreamItemsHeaders: [String]
    var seconds: Double

    var pageOrigin: String { "http://127.0.0.1:\(sitePort)" }
    var proxyOrigin: String { "http://127.0.0.1:\(proxyPort)" }

    /// The value of `cors_proxy_requests_total{route,kind,outcome}` (0 when absent).
    func requestsTotal(route: String, kind: String, outcome: String) -> Double {
        let prefix = "cors_proxy_requests_total{route=\"\(route)\",kind=\"\(kind)\",outcome=\"\(outcome)\"} "
        guard let line = metrics.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return 0 }
        return Double(line.dropFirst(prefix.count)) ?? 0
    }

    static let pagesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Pages").path

    static func conf(apiPort: Int, sitePort: Int) -> String {
        """
        listen 127.0.0.1:0
        admin  127.0.0.1:0

        upstream api  http://127.0.0.1:\(apiPort)
        upstream site http://127.0.0.1:\(sitePort)
        # Nothing listens on port 1: connection refused, the proxy answers 502.
        upstream dead { url http://127.0.0.1:1; connect_timeout 1s; timeout 2s }

        cors {
            allow_origin      http://127.0.0.1:\(sitePort)
            allow_methods     GET HEAD POST PUT
            allow_headers     Content-Type X-Requested-With
            expose_headers    X-Request-Id
            allow_credentials on
        }

        route /api/public/ { upstream api; allow_origin *; allow_credentials off }
        route /api/admin/  { upstream api; allow_origin https://admin.example.com }
        route /api/legacy/ { upstream dead }
        route /api/        { upstream api }
        # The same-origin page, served by the proxy itself.
        route /pages/      { upstream site; cors off; strip_prefix /pages }
        """
    }

    /// Starts everything, runs the page, records, stops everything. Blocking: run it on its
    /// own thread (see `BrowserFixture`).
    static func perform() throws -> BrowserRun {
        let started = Date()
        _ = try Chromium.executable()  // fail first and clearly when there is no browser
        let upstream = try DemoUpstream(siteDirectory: pagesDirectory)
        defer { upstream.process.stop() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cors-proxy-browser-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let proxy = try ProxyProcess(
            conf: conf(apiPort: upstream.apiPort, sitePort: upstream.sitePort), directory: directory)
        defer { proxy.process.stop() }

        let url = "http://127.0.0.1:\(upstream.sitePort)/cors.html?proxy=\(proxy.port)"
        let dom = try Chromium.dumpDOM(url: url)
        guard let json = Chromium.textContent(ofElement: "pre", id: "results", in: dom) else {
            throw BrowserTestFailure("no <pre id=\"results\"> in the DOM of \(url):\n\(dom)")
        }
        guard json != "pending" else {
            throw BrowserTestFailure("the page did not finish its calls before Chromium dumped the DOM:\n\(dom)")
        }
        let results: PageResults
        do {
            results = try JSONDecoder().decode(PageResults.self, from: Data(json.utf8))
        } catch {
            throw BrowserTestFailure("results are not what the test expects (\(error)):\n\(json)")
        }

        let log = try httpRequest(port: upstream.apiPort, "GET", "/__requests")
        let requests = try JSONDecoder().decode([RecordedRequest].self, from: log.body)
        let metrics = try httpRequest(port: proxy.adminPort, "GET", "/metrics")
        // After reading the log: this direct call is recorded too.
        let items = try httpRequest(port: upstream.apiPort, "GET", "/items")
        return BrowserRun(
            sitePort: upstream.sitePort, proxyPort: proxy.port, results: results, upstreamRequests: requests,
            metrics: String(decoding: metrics.body, as: UTF8.self),
            upstreamItemsHeaders: items.headers.map { $0.name.lowercased() },
            seconds: Date().timeIntervalSince(started))
    }
}

/// Runs the browser once per test process, on its own thread (the run blocks on child
/// processes; the cooperative thread pool stays free), and hands the same record to every test.
actor BrowserFixture {
    static let shared = BrowserFixture()
    private var run: Task<BrowserRun, any Error>?

    func get() async throws -> BrowserRun {
        if let run { return try await run.value }
        let task = Task<BrowserRun, any Error> {
            try await withCheckedThrowingContinuation { continuation in
                let thread = Thread { continuation.resume(with: Result { try BrowserRun.perform() }) }
                thread.name = "BrowserTests"
                thread.start()
            }
        }
        run = task
        return try await task.value
    }
}

@Suite("Browser (headless Chromium) → cors-proxy → demo API")
struct BrowserTests {
    func browser() async throws -> BrowserRun { try await BrowserFixture.shared.get() }

    @Test("an allowed cross-origin GET reads its JSON body")
    func allowedGetReadsBody() async throws {
        let run = try await browser()
        let outcome = run.results.allowedGet
        #expect(outcome.ok, "\(outcome.summary)")
        #expect(outcome.status == 200)
        let items = try JSONSerialization.jsonObject(with: Data((outcome.body ?? "").utf8)) as? [[String: Any]]
        #expect(items?.count == 3)
        #expect(items?.first?["name"] as? String == "apple")
        #expect(run.results.origin == run.pageOrigin)
    }

    @Test("a denied origin is a TypeError in JS, and the upstream never sees the request")
    func deniedOriginNeverReachesUpstream() async throws {
        let run = try await browser()
        let outcome = run.results.deniedOrigin
        #expect(!outcome.ok, "\(outcome.summary)")
        #expect(outcome.error?.hasPrefix("TypeError") == true, "\(outcome.summary)")
        // The call did reach the proxy, which denied it …
        #expect(run.requestsTotal(route: "/api/admin/", kind: "actual", outcome: "denied") >= 1, "\(run.metrics)")
        // … and forwarded nothing.
        let targets = run.upstreamRequests.map(\.target)
        #expect(!targets.contains { $0.contains("/admin/") }, "upstream saw \(targets)")
    }

    @Test("a PUT with a custom header is preflighted by the proxy (upstream sees no OPTIONS) and succeeds")
    func customHeaderPutIsPreflighted() async throws {
        let run = try await browser()
        let outcome = run.results.preflightedPut
        #expect(outcome.ok, "\(outcome.summary)")
        #expect(outcome.status == 200)
        #expect(outcome.body?.contains(#""method":"PUT""#) == true, "\(outcome.summary)")
        // The browser did send a preflight, and the proxy answered it …
        #expect(run.requestsTotal(route: "/api/", kind: "preflight", outcome: "allowed") >= 1, "\(run.metrics)")
        // … without forwarding it; the PUT itself arrived with its custom header.
        #expect(!run.upstreamRequests.contains { $0.method == "OPTIONS" }, "upstream saw an OPTIONS")
        let put = run.upstreamRequests.first { $0.method == "PUT" && $0.target == "/api/items/1" }
        #expect(put != nil, "upstream saw \(run.upstreamRequests.map { "\($0.method) \($0.target)" })")
        #expect(put?.header("X-Requested-With") == "browser-test")
    }

    @Test("an exposed header is readable; an unexposed one reads as null")
    func exposedAndUnexposedHeaders() async throws {
        let run = try await browser()
        let outcome = run.results.allowedGet
        #expect(outcome.ok, "\(outcome.summary)")
        // The API does send both (asked directly) …
        #expect(run.upstreamItemsHeaders.contains("x-request-id"))
        #expect(run.upstreamItemsHeaders.contains("x-internal-trace"))
        // … the script reads only the one in expose_headers.
        let probes = outcome.probes ?? [:]
        let requestID = probes["X-Request-Id"] ?? nil
        #expect(requestID.flatMap { Int($0) } != nil, "X-Request-Id read as \(String(describing: requestID))")
        #expect(probes.keys.contains("X-Internal-Trace"))
        #expect((probes["X-Internal-Trace"] ?? nil) == nil, "X-Internal-Trace is readable")
        #expect(outcome.headers?["x-internal-trace"] == nil)
        #expect(outcome.headers?["x-request-id"] != nil)
    }

    @Test("credentials: 'include' works on a route with credentials on (the cookie arrives)")
    func credentialsIncludeWithCredentialsOn() async throws {
        let run = try await browser()
        let outcome = run.results.credentialsOn
        #expect(outcome.ok, "\(outcome.summary)")
        #expect(outcome.status == 200)
        #expect(outcome.body?.contains("browser_test=cookie-value") == true, "\(outcome.summary)")
    }

    @Test("credentials: 'include' fails on a route with credentials off (allow_origin *)")
    func credentialsIncludeWithCredentialsOff() async throws {
        let run = try await browser()
        // The route itself works for a plain call …
        let plain = run.results.publicWithoutCredentials
        #expect(plain.ok, "\(plain.summary)")
        #expect(plain.status == 200)
        // … but the browser refuses `Access-Control-Allow-Origin: *` for a credentialed one.
        let outcome = run.results.credentialsOff
        #expect(!outcome.ok, "\(outcome.summary)")
        #expect(outcome.error?.hasPrefix("TypeError") == true, "\(outcome.summary)")
    }

    @Test("a proxy-made 502 reads as status 502, not as a CORS failure")
    func proxyMade502IsReadable() async throws {
        let run = try await browser()
        let outcome = run.results.badGateway
        #expect(outcome.ok, "\(outcome.summary)")
        #expect(outcome.status == 502)
    }

    @Test("a same-origin POST through the proxy (page served by the proxy) is not blocked")
    func sameOriginPostIsForwarded() async throws {
        let run = try await browser()
        let outcome = run.results.sameOriginPost
        #expect(outcome.origin == run.proxyOrigin, "the iframe page ran at \(outcome.origin ?? "?")")
        #expect(outcome.ok, "\(outcome.summary)")
        #expect(outcome.status == 200)
        #expect(outcome.body?.contains(#""method":"POST""#) == true, "\(outcome.summary)")
        // The browser sent its Origin (the proxy's own, not in allow_origin) and the proxy
        // treated the request as same-origin.
        let post = run.upstreamRequests.first { $0.method == "POST" && $0.target == "/api/items" }
        #expect(post?.header("Origin") == run.proxyOrigin, "upstream saw \(String(describing: post))")
        #expect(run.requestsTotal(route: "/api/", kind: "actual", outcome: "same_origin") >= 1, "\(run.metrics)")
    }
}
