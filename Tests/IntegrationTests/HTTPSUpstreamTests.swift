import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The demo upstream over HTTPS, on a free port of 127.0.0.1.
final class HTTPSUpstream: @unchecked Sendable {
    let process: TestProcess
    let port: Int

    /// Serves `pair`; with `clientCA`, requires a client certificate signed by it.
    init(_ pair: TestCertificates.Pair, clientCA: String? = nil) throws {
        var arguments = ["--listen", "127.0.0.1:0", "--quiet", "--tls-cert", pair.certificate, "--tls-key", pair.key]
        if let clientCA { arguments += ["--client-ca", clientCA] }
        process = try TestProcess("demo-upstream", arguments)
        let line = try process.waitForLine("listening line") { $0.hasPrefix("listening on ") }
        guard let port = line.split(separator: ":").last.flatMap({ Int($0) }) else {
            throw TestTimeout(what: "a port in \(line)")
        }
        self.port = port
    }

    var url: String { "https://127.0.0.1:\(port)" }
}

/// The proxy in front of HTTPS upstreams: `ca_file`, the system store, host names,
/// `tls_verify off`, mutual TLS, what a TLS failure looks like to the browser, the log and
/// the metrics, and a reload that names a broken `ca_file`.
@Suite(.serialized)
struct HTTPSUpstreamTests {
    let app = "https://app.example.com"

    func conf(_ upstreams: String, routes: String) -> String {
        """
        listen 127.0.0.1:0
        admin 127.0.0.1:0
        \(upstreams)
        cors {
            allow_origin https://app.example.com
        }
        \(routes)

        """
    }

    func upstreamErrors(_ proxy: Proxy) throws -> [String] {
        let admin = try #require(proxy.adminPort)
        return try HTTPClient(port: admin).request("GET", "/metrics").bodyText
            .split(separator: "\n").map(String.init).filter { $0.hasPrefix("cors_proxy_upstream_errors_total{") }
    }

    @Test func caFileTrustsThePrivateCA() throws {
        let certs = try TestCertificates.shared()
        let upstream = try HTTPSUpstream(TestCertificates.Pair(certificate: certs.leafChain, key: certs.leaf.key))
        let proxy = try Proxy(
            conf: conf(
                "upstream api { url \(upstream.url); ca_file \(certs.ca.certificate) }",
                routes: "route /api/ { upstream api }"))
        for _ in 0..<3 {
            let r = try proxy.client().request("GET", "/api/items", headers: [("Origin", app)])
            #expect(r.status == 200)
            #expect(r.values("Access-Control-Allow-Origin") == [app])
            #expect(r.bodyText.contains("\"id\""), "\(r.bodyText)")
        }
        #expect(try upstreamErrors(proxy) == [])
    }

    /// Without `ca_file` the system store decides, and it does not know the private CA: a 502
    /// the page can read (CORS headers), a log line with curl's words, a `tls` count.
    @Test func systemStoreRefusesThePrivateCA() throws {
        let certs = try TestCertificates.shared()
        let upstream = try HTTPSUpstream(certs.leaf)
        let proxy = try Proxy(conf: conf("upstream api \(upstream.url)", routes: "route /api/ { upstream api }"))
        let r = try proxy.client().request("GET", "/api/items", headers: [("Origin", app)])
        #expect(r.status == 502)
        #expect(r.values("Access-Control-Allow-Origin") == [app])
        #expect(r.values("Vary").joined(separator: ",").contains("Origin"))
        let line = try proxy.process.waitForLine("the upstream failure") { $0.contains("upstream failed") }
        #expect(line.contains("upstream.error=tls"), "\(line)")
        #expect(line.contains("SSL certificate problem: unable to get local issuer certificate"), "\(line)")
        #expect(try upstreamErrors(proxy) == [#"cors_proxy_upstream_errors_total{upstream="api",kind="tls"} 1"#])
    }

    @Test func aNameMismatchIs502TLS() throws {
        let certs = try TestCertificates.shared()
        let upstream = try HTTPSUpstream(certs.wrongName)
        let proxy = try Proxy(
            conf: conf(
                "upstream api { url \(upstream.url); ca_file \(certs.ca.certificate) }",
                routes: "route /api/ { upstream api }"))
        let r = try proxy.client().request("GET", "/api/items", headers: [("Origin", app)])
        #expect(r.status == 502)
        #expect(r.values("Access-Control-Allow-Origin") == [app])
        let line = try proxy.process.waitForLine("the upstream failure") { $0.contains("upstream failed") }
        #expect(line.contains("upstream.error=tls"), "\(line)")
        #expect(line.contains("127.0.0.1"), "\(line)")
        #expect(try upstreamErrors(proxy) == [#"cors_proxy_upstream_errors_total{upstream="api",kind="tls"} 1"#])
    }

    @Test func verifyOffAcceptsTheWrongName() throws {
        let certs = try TestCertificates.shared()
        let upstream = try HTTPSUpstream(certs.wrongName)
        let proxy = try Proxy(
            conf: conf("upstream api { url \(upstream.url); tls_verify off }", routes: "route /api/ { upstream api }"))
        let warning = try proxy.process.waitForLine("the tls_verify warning") { $0.contains("conf warning") }
        #expect(warning.contains("tls_verify off: the upstream's certificate and host name are not checked"))
        let r = try proxy.client().request("GET", "/api/items", headers: [("Origin", app)])
        #expect(r.status == 200)
        #expect(r.values("Access-Control-Allow-Origin") == [app])
    }

    /// Two upstreams on the one server that requires client certificates: the one with the
    /// client certificate gets through, the one without gets a `tls` 502, whatever the order
    /// (no pooled connection carries one's identity to the other).
    @Test func mutualTLS() throws {
        let certs = try TestCertificates.shared()
        let upstream = try HTTPSUpstream(certs.leaf, clientCA: certs.ca.certificate)
        let proxy = try Proxy(
            conf: conf(
                """
                upstream with {
                    url                \(upstream.url)
                    ca_file            \(certs.ca.certificate)
                    client_certificate \(certs.client.certificate)
                    client_key         \(certs.client.key)
                }
                upstream without { url \(upstream.url); ca_file \(certs.ca.certificate) }
                """,
                routes:
                    "route /with/ { upstream with; strip_prefix /with }\nroute /without/ { upstream without; strip_prefix /without }"
            ))
        let client = proxy.client()
        #expect(try client.request("GET", "/with/healthz", headers: [("Origin", app)]).status == 200)
        let refused = try client.request("GET", "/without/healthz", headers: [("Origin", app)])
        #expect(refused.status == 502)
        #expect(refused.values("Access-Control-Allow-Origin") == [app])
        #expect(try client.request("GET", "/with/healthz", headers: [("Origin", app)]).status == 200)
        let line = try proxy.process.waitForLine("the upstream failure") { $0.contains("upstream failed") }
        #expect(line.contains("upstream.error=tls") && line.contains("alert"), "\(line)")
        #expect(try upstreamErrors(proxy) == [#"cors_proxy_upstream_errors_total{upstream="without",kind="tls"} 1"#])
    }

    /// A reload whose `ca_file` cannot be read is refused as a whole and logged; the old conf
    /// (and its CA) keeps serving. A good reload afterwards is taken.
    @Test func reloadWithABrokenCAFileIsRefused() throws {
        let certs = try TestCertificates.shared()
        let upstream = try HTTPSUpstream(certs.leaf)
        let good = conf(
            "upstream api { url \(upstream.url); ca_file \(certs.ca.certificate) }",
            routes: "route /api/ { upstream api }")
        let proxy = try Proxy(conf: good)
        #expect(try proxy.client().request("GET", "/api/items", headers: [("Origin", app)]).status == 200)

        try proxy.rewrite(conf: good.replacingOccurrences(of: certs.ca.certificate, with: "/nonexistent/ca.pem"))
        proxy.process.signal(SIGHUP)
        let refused = try proxy.process.waitForLine("reload refused") { $0.contains("reload refused") }
        #expect(refused.contains("cannot read ca_file /nonexistent/ca.pem: no such file"), "\(refused)")
        #expect(refused.contains("\(proxy.confPath):3:"), "\(refused)")
        #expect(try proxy.client().request("GET", "/api/items", headers: [("Origin", app)]).status == 200)

        // A file that is there but is not a CA bundle: refused too.
        try proxy.rewrite(conf: good.replacingOccurrences(of: certs.ca.certificate, with: certs.ca.key))
        proxy.process.signal(SIGHUP)
        try proxy.process.waitForLine("second refusal") {
            $0.contains("reload refused") && $0.contains("is not a CA certificate bundle")
        }
        #expect(try proxy.client().request("GET", "/api/items", headers: [("Origin", app)]).status == 200)

        // Another CA, readable: taken, and now the upstream is not trusted.
        try proxy.rewrite(conf: good.replacingOccurrences(of: certs.ca.certificate, with: certs.otherCA.certificate))
        proxy.process.signal(SIGHUP)
        try proxy.process.waitForLine("reload") { $0.contains("conf reloaded") }
        #expect(try proxy.client().request("GET", "/api/items", headers: [("Origin", app)]).status == 502)
    }
}
