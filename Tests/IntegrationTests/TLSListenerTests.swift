import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The built proxy on a `listen … tls` address in front of demo-upstream, from outside: the
/// same CORS answers over HTTP/1.1-over-TLS and HTTP/2, ALPN, `min_version`, what non-TLS bytes
/// get, the handshake error count, and certificate rotation on SIGHUP.
@Suite(.serialized)
struct TLSListenerTests {
    static let app = "https://app.example.com"

    /// One request as a browser could send it, and what it must get (docs/CONFIG.md's table).
    struct Case: CustomStringConvertible, Sendable {
        var name: String
        var method = "GET"
        var path: String
        var headers: [(String, String)]
        var status: Int
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "allowed preflight", method: "OPTIONS", path: "/api/items",
            headers: [
                ("Origin", app), ("Access-Control-Request-Method", "PUT"),
                ("Access-Control-Request-Headers", "content-type, x-custom"),
            ], status: 204),
        Case(
            name: "denied preflight", method: "OPTIONS", path: "/api/items",
            headers: [("Origin", "https://evil.example"), ("Access-Control-Request-Method", "PUT")], status: 403),
        Case(name: "allowed actual", path: "/api/items", headers: [("Origin", app)], status: 200),
        Case(name: "denied actual", path: "/api/items", headers: [("Origin", "https://evil.example")], status: 403),
        Case(name: "no route", path: "/nowhere", headers: [("Origin", app)], status: 404),
        Case(name: "upstream refused", path: "/dead/x", headers: [("Origin", app)], status: 502),
    ]

    /// Header fields that differ between two requests whatever the protocol: the upstream's
    /// request counter, and the framing HTTP/1.1 has and HTTP/2 replaces (RFC 9113 8.2.2).
    static let ignored: Set<String> = ["x-request-id", "date", "connection", "keep-alive", "transfer-encoding"]

    static func comparable(_ headers: [(name: String, value: String)]) -> [String] {
        headers.filter { !ignored.contains($0.name.lowercased()) }.map { "\($0.name.lowercased()): \($0.value)" }
            .sorted()
    }

    func curl(_ proxy: Proxy, _ version: String, _ c: Case) throws -> CurlResult {
        var arguments = [version, "-X", c.method, "-w", "%{http_version}"]
        for (name, value) in c.headers { arguments += ["-H", "\(name): \(value)"] }
        return try Curl.run(arguments + ["https://127.0.0.1:\(proxy.port)\(c.path)"])
    }

    @Test func theSameCORSAnswersOverHTTP1AndHTTP2() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: try tlsConf(upstream: upstream.url))
        for c in Self.cases {
            let h1 = try curl(proxy, "--http1.1", c)
            let h2 = try curl(proxy, "--http2", c)
            #expect(h1.writeOut == "1.1" && h2.writeOut == "2", "\(c): \(h1.stderr) \(h2.stderr)")
            #expect(h1.status == c.status && h2.status == c.status, "\(c): \(h1.status) / \(h2.status)")
            #expect(Self.comparable(h1.headers) == Self.comparable(h2.headers), "\(c)")
            #expect(h1.body == h2.body, "\(c): \(h1.bodyText) / \(h2.bodyText)")
            #expect(h2.headers.allSatisfy { $0.name == $0.name.lowercased() }, "\(c): HTTP/2 names are lowercase")
        }
        // Denials forward nothing: the upstream saw only the allowed actual request, twice.
        let targets = try upstream.receivedTargets()
        #expect(targets == ["/api/items", "/api/items"], "\(targets)")
        // The CORS headers are there (the comparison above would pass on two empty heads too).
        let allowed = try curl(proxy, "--http2", Self.cases[2])
        #expect(allowed.values("access-control-allow-origin") == [Self.app])
        #expect(allowed.values("vary").joined(separator: ",").contains("Origin"))
        let preflight = try curl(proxy, "--http2", Self.cases[0])
        #expect(preflight.values("access-control-allow-methods").first?.contains("PUT") == true)
        let badGateway = try curl(proxy, "--http2", Self.cases[5])
        #expect(badGateway.values("access-control-allow-origin") == [Self.app], "502s carry CORS headers")
    }

    @Test func theUpstreamHearsHTTPSAndSameOriginUsesTheAuthority() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: try tlsConf(upstream: upstream.url))
        let own = "https://127.0.0.1:\(proxy.port)"
        for version in ["--http1.1", "--http2"] {
            let echo = try Curl.run([version, "-H", "Origin: \(Self.app)", "https://127.0.0.1:\(proxy.port)/api/echo"])
            let json = try JSONSerialization.jsonObject(with: Data(echo.body)) as? [String: Any]
            let sent = (json?["headers"] as? [[String]] ?? []).map { "\($0[0].lowercased()): \($0[1])" }
            #expect(sent.contains("x-forwarded-proto: https"), "\(version): \(sent)")
            #expect(sent.contains("x-forwarded-host: 127.0.0.1:\(proxy.port)"), "\(version): \(sent)")

            // The proxy's own origin is not in allow_origin, yet same-origin: forwarded.
            let same = try Curl.run([
                version, "-X", "POST", "-H", "Origin: \(own)", "--data", "x",
                "https://127.0.0.1:\(proxy.port)/api/items",
            ])
            #expect(same.status == 200, "\(version): \(same.bodyText)")
            // The same origin with http:// is another origin: denied.
            let other = try Curl.run([
                version, "-X", "POST", "-H", "Origin: http://127.0.0.1:\(proxy.port)", "--data", "x",
                "https://127.0.0.1:\(proxy.port)/api/items",
            ])
            #expect(other.status == 403, "\(version)")
        }
        #expect(
            try proxy.metric(#"cors_proxy_requests_total{route="/api/",kind="actual",outcome="same_origin"}"#) == 2)
    }

    @Test func alpnOffersH2ByDefaultAndOnlyHTTP1WithHTTP2Off() throws {
        let upstream = try Upstream()
        let on = try Proxy(conf: try tlsConf(upstream: upstream.url))
        let url = "https://127.0.0.1:\(on.port)/api/items"
        #expect(try Curl.run(["--http2", "-w", "%{http_version}", url]).writeOut == "2")
        let offered = try H2Raw.run("handshake", port: on.port, ["--alpn", "h2,http/1.1"])
        #expect(offered["alpn"] as? String == "h2", "\(offered)")
        // A client that does not offer h2 speaks HTTP/1.1.
        #expect(try Curl.run(["--http1.1", "-w", "%{http_version}", url]).writeOut == "1.1")

        let off = try Proxy(conf: try tlsConf(upstream: upstream.url, tls: "http2 off"))
        let offURL = "https://127.0.0.1:\(off.port)/api/items"
        let asked = try Curl.run(["--http2", "-w", "%{http_version}", offURL])
        #expect(asked.writeOut == "1.1" && asked.status == 200, "\(asked.stderr)")
        let onlyH2 = try H2Raw.run("handshake", port: off.port, ["--alpn", "h2,http/1.1"])
        #expect(onlyH2["alpn"] as? String == "http/1.1", "\(onlyH2)")
    }

    @Test func minVersion13RefusesATLS12Client() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: try tlsConf(upstream: upstream.url, tls: "min_version 1.3"))
        let url = "https://127.0.0.1:\(proxy.port)/api/items"
        let old = try Curl.run(["--tls-max", "1.2", url])
        #expect(old.exitCode != 0 && old.status == 0, "\(old.stderr)")
        let current = try Curl.run(["--tlsv1.3", "-w", "%{http_version}", url])
        #expect(current.status == 200 && current.writeOut == "2", "\(current.stderr)")
        let python = try H2Raw.run("handshake", port: proxy.port, ["--tls-max", "1.2"])
        #expect(python["handshake"] as? String == "failed", "\(python)")
        // The default (1.2) takes a TLS 1.2 client.
        let defaults = try Proxy(conf: try tlsConf(upstream: upstream.url))
        let twelve = try H2Raw.run("handshake", port: defaults.port, ["--tls-max", "1.2"])
        #expect(twelve["version"] as? String == "TLSv1.2", "\(twelve)")
    }

    @Test func plainHTTPToTheTLSPortGets400() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: try tlsConf(upstream: upstream.url))
        let r = try proxy.client().request("GET", "/api/items", headers: [("Origin", Self.app)])
        #expect(r.status == 400)
        #expect(r.bodyText == "plain HTTP request sent to a TLS port\n")
        #expect(r.value("Connection") == "close")
        #expect(try upstream.receivedTargets() == [])
    }

    /// Bytes that are not TLS, and a ClientHello that never completes, are closed within a few
    /// seconds (the handshake gets 5 s), not held until an idle timeout.
    @Test(arguments: ["random bytes", "truncated ClientHello"])
    func brokenOpeningsAreClosedWithinSeconds(_ kind: String) throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: try tlsConf(upstream: upstream.url))
        _ = try Curl.run(["--http2", "https://127.0.0.1:\(proxy.port)/api/items"])
        let baseline = proxy.openDescriptors
        let client = HTTPClient(port: proxy.port, timeoutSeconds: 8)
        let bytes: [UInt8] =
            kind == "random bytes"
            // Not 0x16 (a handshake record) and not a letter (a plain HTTP request).
            ? [0x00] + (0..<511).map { _ in UInt8.random(in: 0...255) }
            // A handshake record header announcing 512 bytes, then the start of a ClientHello.
            : [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03] + Array(repeating: 0x42, count: 32)
        let started = Date()
        try client.send(bytes)
        #expect(client.waitForClose(), "\(kind): still open after 8 s")
        #expect(Date().timeIntervalSince(started) < 7, "\(kind)")
        #expect(try Curl.run(["--http2", "https://127.0.0.1:\(proxy.port)/api/items"]).status == 200)
        #expect(proxy.descriptorsSettle(at: baseline) <= baseline, "\(kind)")
    }

    /// A handshake that starts and fails is counted; a connection that sends nothing, plain
    /// HTTP and a good handshake are not.
    @Test func failedHandshakesAreCounted() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: try tlsConf(upstream: upstream.url))
        let series = "cors_proxy_tls_handshake_errors_total"
        for _ in 0..<5 {
            let silent = proxy.client()
            try silent.connect()
            silent.close()
        }
        _ = try proxy.client().request("GET", "/api/items")
        #expect(try Curl.run(["--http2", "https://127.0.0.1:\(proxy.port)/api/items"]).status == 200)
        #expect(try proxy.metric(series) == 0, "a connection that sent nothing, or plain HTTP, is not counted")

        // A client that does not trust the certificate aborts the handshake (alert unknown_ca).
        let untrusted = try Curl.run(["https://127.0.0.1:\(proxy.port)/api/items"], trustCA: false)
        #expect(untrusted.exitCode == 60, "\(untrusted.stderr)")
        #expect(try proxy.waitForMetric(series, toBe: 1) == 1)
        // A TLS 1.1 client: the proxy answers protocol_version.
        let old = try H2Raw.run("handshake", port: proxy.port, ["--tls-max", "1.1"])
        #expect(old["handshake"] as? String == "failed", "\(old)")
        #expect(try proxy.waitForMetric(series, toBe: 2) == 2)
        #expect(try upstream.receivedTargets() == ["/api/items"])
    }

    /// SIGHUP re-reads the certificate files: new connections get the new certificate, a
    /// connection already open goes on with the old one; a reload whose key cannot be read, or
    /// does not match, is refused as a whole and the certificate in force stays.
    @Test func sighupRotatesTheCertificate() throws {
        let certs = try TestCertificates.shared()
        let upstream = try Upstream()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rotation-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
        let certificate = directory.appendingPathComponent("fullchain.pem").path
        let key = directory.appendingPathComponent("privkey.pem").path
        func install(_ pair: TestCertificates.Pair) throws {
            for (from, to) in [(pair.certificate, certificate), (pair.key, key)] {
                try Data(contentsOf: URL(fileURLWithPath: from)).write(to: URL(fileURLWithPath: to), options: .atomic)
                try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: to)
            }
        }
        try install(certs.leaf)
        // As `nobody` when the tests run as root, so that a mode-000 file is really unreadable.
        let proxy = try Proxy(
            conf: try tlsConf(upstream: upstream.url, certificate: certificate, key: key), unprivileged: true)
        let (old, new) = (
            try certificateSerial(certs.leaf.certificate), try certificateSerial(certs.rsaLeaf.certificate)
        )
        #expect(old != new)
        func servedSerial() throws -> String? {
            try H2Raw.run("handshake", port: proxy.port)["serial"] as? String
        }
        #expect(try servedSerial() == old)

        let gate = directory.appendingPathComponent("go").path
        let held = try H2Raw.start("hold", port: proxy.port, ["--live", "--wait-file", gate, "--timeout", "30"])
        let first = try held.waitForLine("the held connection's first response") { $0.contains(#""type": "first""#) }
        #expect(first.contains(#""status": 200"#) && first.contains(#""serial": "\#(old)""#), "\(first)")

        try install(certs.rsaLeaf)
        proxy.process.signal(SIGHUP)
        try proxy.process.waitForLine("the reload") { $0.contains("conf reloaded") }
        #expect(try servedSerial() == new)

        // The connection opened before the reload still works, with the certificate it had.
        #expect(FileManager.default.createFile(atPath: gate, contents: nil))
        let second = try held.waitForLine("the held connection's second response") {
            $0.contains(#""type": "second""#)
        }
        #expect(second.contains(#""status": 200"#) && second.contains(#""serial": "\#(old)""#), "\(second)")

        // An unreadable key: refused, logged, counted; the rotated certificate stays.
        try install(certs.leaf)
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: key)
        proxy.process.signal(SIGHUP)
        let unreadable = try proxy.process.waitForLine("the first refusal") { $0.contains("reload refused") }
        #expect(unreadable.contains("cannot read key \(key)"), "\(unreadable)")
        #expect(try proxy.waitForMetric(#"cors_proxy_reloads_total{outcome="error"}"#, toBe: 1) == 1)
        #expect(try servedSerial() == new)

        // A key that belongs to another certificate: refused too.
        try install(TestCertificates.Pair(certificate: certs.leaf.certificate, key: certs.otherKey))
        proxy.process.signal(SIGHUP)
        let mismatch = try proxy.process.waitForLine("the second refusal") {
            $0.contains("reload refused") && $0.contains("does not belong to the certificate")
        }
        #expect(mismatch.contains(key), "\(mismatch)")
        #expect(try proxy.waitForMetric(#"cors_proxy_reloads_total{outcome="error"}"#, toBe: 2) == 2)
        #expect(try servedSerial() == new)
        #expect(try proxy.metric(#"cors_proxy_reloads_total{outcome="ok"}"#) == 1)
        #expect(try Curl.run(["--http2", "https://127.0.0.1:\(proxy.port)/api/items"]).status == 200)
    }
}
