// Headless Chromium against the proxy's TLS listener: a page served over http (demo-upstream's
// site listener) fetches cross-origin from https://127.0.0.1:PORT, which ALPN makes HTTP/2.
//
// Chromium trusts the proxy's test certificate through `--ignore-certificate-errors-spki-list`
// with the SHA-256 of the leaf's public key (computed with openssl at test time): that pins the
// one key, while `--ignore-certificate-errors` would accept any certificate at all, and then a
// test could not tell a served certificate from a broken one.

import Foundation
import TestSupport
import Testing

struct HTTP2PageResults: Decodable, Sendable {
    var origin: String
    var allowed: FetchOutcome
    /// `/api/timing-allowed`: its response sends `Timing-Allow-Origin: *`.
    var timed: FetchOutcome
    var denied: FetchOutcome
    /// Path (from the proxy's origin) → `nextHopProtocol` of its resource timing entry.
    var protocols: [String: String]
}

struct HTTP2BrowserRun: Sendable {
    var results: HTTP2PageResults
    var upstreamRequests: [RecordedRequest]
    var metrics: String

    static func conf(apiPort: Int, sitePort: Int, certificate: String, key: String) -> String {
        """
        listen 127.0.0.1:0 tls
        admin  127.0.0.1:0

        upstream api http://127.0.0.1:\(apiPort)

        cors {
            allow_origin http://127.0.0.1:\(sitePort)
        }

        route /api/admin/ { upstream api; allow_origin https://admin.example.com }
        route /api/       { upstream api }

        tls {
            certificate \(certificate)
            key         \(key)
        }
        """
    }

    /// base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate, as Chromium's
    /// `--ignore-certificate-errors-spki-list` takes it.
    static func spkiHash(_ certificate: String, in directory: URL) throws -> String {
        let publicKey = directory.appendingPathComponent("leaf-public.pem").path
        let der = directory.appendingPathComponent("leaf-public.der").path
        let digest = directory.appendingPathComponent("leaf-spki.sha256").path
        try TestCertificates.openssl(["x509", "-in", certificate, "-pubkey", "-noout", "-out", publicKey])
        try TestCertificates.openssl(["pkey", "-pubin", "-in", publicKey, "-outform", "der", "-out", der])
        try TestCertificates.openssl(["dgst", "-sha256", "-binary", "-out", digest, der])
        let hash = try Data(contentsOf: URL(fileURLWithPath: digest))
        guard hash.count == 32 else { throw BrowserTestFailure("openssl dgst gave \(hash.count) bytes") }
        return hash.base64EncodedString()
    }

    static func perform() throws -> HTTP2BrowserRun {
        _ = try Chromium.executable()
        let certs = try TestCertificates.shared()
        let upstream = try DemoUpstream(siteDirectory: BrowserRun.pagesDirectory)
        defer { upstream.process.stop() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cors-proxy-h2-browser-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let proxy = try ProxyProcess(
            conf: conf(
                apiPort: upstream.apiPort, sitePort: upstream.sitePort, certificate: certs.leafChain,
                key: certs.leaf.key), directory: directory)
        defer { proxy.process.stop() }

        let spki = try spkiHash(certs.leaf.certificate, in: directory)
        let url = "http://127.0.0.1:\(upstream.sitePort)/h2.html?proxy=\(proxy.port)"
        let dom = try Chromium.dumpDOM(url: url, extraArguments: ["--ignore-certificate-errors-spki-list=\(spki)"])
        guard let json = Chromium.textContent(ofElement: "pre", id: "results", in: dom), json != "pending" else {
            throw BrowserTestFailure("the page did not finish its calls before Chromium dumped the DOM:\n\(dom)")
        }
        let results: HTTP2PageResults
        do {
            results = try JSONDecoder().decode(HTTP2PageResults.self, from: Data(json.utf8))
        } catch {
            throw BrowserTestFailure("results are not what the test expects (\(error)):\n\(json)")
        }
        let log = try httpRequest(port: upstream.apiPort, "GET", "/__requests")
        let metrics = try httpRequest(port: proxy.adminPort, "GET", "/metrics")
        return HTTP2BrowserRun(
            results: results, upstreamRequests: try JSONDecoder().decode([RecordedRequest].self, from: log.body),
            metrics: String(decoding: metrics.body, as: UTF8.self))
    }
}

/// One browser run for the suite, on its own thread (as `BrowserFixture`).
actor HTTP2BrowserFixture {
    static let shared = HTTP2BrowserFixture()
    private var run: Task<HTTP2BrowserRun, any Error>?

    func get() async throws -> HTTP2BrowserRun {
        if let run { return try await run.value }
        let task = Task<HTTP2BrowserRun, any Error> {
            try await withCheckedThrowingContinuation { continuation in
                let thread = Thread { continuation.resume(with: Result { try HTTP2BrowserRun.perform() }) }
                thread.name = "HTTP2BrowserTests"
                thread.start()
            }
        }
        run = task
        return try await task.value
    }
}

@Suite("Browser (headless Chromium) → cors-proxy over HTTPS and HTTP/2 → demo API")
struct HTTP2BrowserTests {
    @Test("an allowed cross-origin fetch over HTTP/2 succeeds, and resource timing says h2")
    func allowedFetchUsesHTTP2() async throws {
        let run = try await HTTP2BrowserFixture.shared.get()
        let outcome = run.results.allowed
        #expect(outcome.ok, "\(outcome.summary)")
        #expect(outcome.status == 200)
        #expect(outcome.body?.contains("apple") == true, "\(outcome.summary)")
        #expect(run.results.timed.ok && run.results.timed.status == 200, "\(run.results.timed.summary)")
        // Chromium shows a cross-origin entry's protocol only under Timing-Allow-Origin (for
        // /api/items it reads ""), so the protocol is read from the fetch whose answer allows it.
        #expect(run.results.protocols["/api/timing-allowed"] == "h2", "\(run.results.protocols)")
    }

    @Test("a denied origin is a TypeError over HTTP/2 too, and the API receives nothing")
    func deniedOriginOverHTTP2() async throws {
        let run = try await HTTP2BrowserFixture.shared.get()
        let outcome = run.results.denied
        #expect(!outcome.ok, "\(outcome.summary)")
        #expect(outcome.error?.hasPrefix("TypeError") == true, "\(outcome.summary)")
        let denied = "cors_proxy_requests_total{route=\"/api/admin/\",kind=\"actual\",outcome=\"denied\"} "
        #expect(run.metrics.split(separator: "\n").contains { $0.hasPrefix(denied) }, "\(run.metrics)")
        let targets = run.upstreamRequests.map(\.target)
        #expect(targets == ["/api/items", "/api/timing-allowed"], "upstream saw \(targets)")
    }
}
