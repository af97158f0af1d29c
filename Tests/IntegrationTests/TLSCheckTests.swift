import Foundation
import TestSupport
import Testing

/// `cors-proxy check` and `serve` on confs with TLS: every diagnostic about the `tls { }`
/// block, `listen … tls`, the upstream TLS directives and the files they name, as the exact
/// `PATH:LINE:COLUMN` lines a user sees.
@Suite struct TLSCheckTests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
        var lines: [String] { stderr.split(separator: "\n").map(String.init) }
    }

    /// Writes `conf` as `proxy.conf` in a fresh directory and runs `cors-proxy COMMAND` on it.
    func run(_ command: String, _ conf: String, in directory: String? = nil) throws -> (path: String, Run) {
        let dir = try directory ?? scratch()
        let path = dir + "/proxy.conf"
        try conf.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try runCORSProxy([command, "--config", path])
        return (path, Run(status: result.status, stdout: result.stdout, stderr: result.stderr))
    }

    func scratch() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tls-check-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func expiryDate(_ certificate: String) throws -> String {
        let line = try TestCertificates.openssl([
            "x509", "-in", certificate, "-noout", "-enddate", "-dateopt", "iso_8601",
        ])
        return String(line.dropFirst("notAfter=".count).prefix(10))
    }

    @Test func goodFilesPass() throws {
        let certs = try TestCertificates.shared()
        let (_, r) = try run(
            "check",
            """
            listen 127.0.0.1:0 tls
            tls {
                certificate \(certs.leafChain)
                key         \(certs.leaf.key)
                http2       off
                min_version 1.3
            }
            upstream api {
                url                https://127.0.0.1:1
                ca_file            \(certs.ca.certificate)
                client_certificate \(certs.client.certificate)
                client_key         \(certs.client.key)
            }
            route / { upstream api; allow_origin https://app.example.com }

            """)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr == "")
        #expect(r.stdout.hasPrefix("listen         127.0.0.1:0 tls\n"))
        #expect(
            r.stdout.contains(
                "tls            certificate \(certs.leafChain)  key \(certs.leaf.key)  http2 off  min_version 1.3\n"))
        #expect(
            r.stdout.contains(
                "upstream api  https://127.0.0.1:1  connect_timeout 5s  timeout 1m  ca_file \(certs.ca.certificate)  tls_verify on  client_certificate \(certs.client.certificate)  client_key \(certs.client.key)\n"
            ))
        #expect(r.stdout.contains("  websocket              on\n"))
    }

    /// Relative paths are read beside the conf, whatever the working directory.
    @Test func relativePathsAreBesideTheConf() throws {
        let certs = try TestCertificates.shared()
        let dir = try scratch()
        try FileManager.default.createDirectory(atPath: dir + "/tls", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: certs.leafChain, toPath: dir + "/tls/chain.pem")
        try FileManager.default.copyItem(atPath: certs.leaf.key, toPath: dir + "/tls/key.pem")
        let (_, r) = try run(
            "check", "listen 127.0.0.1:0 tls\ntls { certificate tls/chain.pem; key tls/key.pem }\n", in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("certificate \(dir)/tls/chain.pem  key \(dir)/tls/key.pem"))
    }

    @Test func serverFileErrors() throws {
        let certs = try TestCertificates.shared()
        let (path, r) = try run(
            "check",
            """
            listen 127.0.0.1:0 tls
            tls {
                certificate missing.pem
                key         \(certs.leaf.certificate)
            }

            """)
        let dir = (path as NSString).deletingLastPathComponent
        #expect(r.status == 1)
        #expect(
            r.lines == [
                "\(path):3:17: error: cannot read certificate \(dir)/missing.pem: no such file; check the path (a relative path is read from the conf file's directory)",
                "\(path):4:17: error: key \(certs.leaf.certificate) is not a PEM private key; give the key in PEM, RSA or EC (-----BEGIN PRIVATE KEY-----, -----BEGIN RSA PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----)",
            ])
        #expect(r.stdout == "")
    }

    @Test func keyNotOfTheCertificate() throws {
        let certs = try TestCertificates.shared()
        let (path, r) = try run(
            "check", "listen 127.0.0.1:0 tls\ntls { certificate \(certs.leafChain); key \(certs.otherKey) }\n")
        #expect(r.status == 1)
        let column = "tls { certificate \(certs.leafChain); key ".count + 1
        #expect(
            r.lines == [
                "\(path):2:\(column): error: the key in \(certs.otherKey) does not belong to the certificate in \(certs.leafChain) (the first certificate there must be the leaf this key was made for); give the matching key, or put the leaf first"
            ])
    }

    @Test func expiringAndExpiredCertificatesWarn() throws {
        let certs = try TestCertificates.shared()
        for (pair, words) in [
            (
                certs.expiring,
                "expires on \(try expiryDate(certs.expiring.certificate)), in 5 days; renew it before then"
            ),
            (certs.expired, "expired on \(try expiryDate(certs.expired.certificate)); browsers refuse it: renew it"),
        ] {
            let (path, r) = try run(
                "check", "listen 127.0.0.1:0 tls\ntls {\n  certificate \(pair.certificate)\n  key \(pair.key)\n}\n")
            #expect(r.status == 0)
            #expect(r.lines == ["\(path):3:15: warning: the certificate in \(pair.certificate) \(words)"])
            #expect(r.stdout.hasPrefix("listen "))
        }
    }

    @Test func upstreamFileErrors() throws {
        let certs = try TestCertificates.shared()
        let (path, r) = try run(
            "check",
            """
            listen 127.0.0.1:0
            upstream a {
                url                https://127.0.0.1:1
                ca_file            \(certs.client.key)
                client_certificate \(certs.client.certificate)
                client_key         \(certs.otherKey)
            }
            upstream b {
                url                https://127.0.0.1:2
                ca_file            /nonexistent/ca.pem
                client_certificate \(certs.directory)
                client_key         \(certs.client.key)
            }

            """)
        #expect(r.status == 1)
        #expect(
            r.lines == [
                "\(path):4:24: error: ca_file \(certs.client.key) is not a CA certificate bundle in PEM (a -----BEGIN CERTIFICATE----- block is missing or damaged); give it in PEM",
                "\(path):6:24: error: the client_key in \(certs.otherKey) does not belong to the client_certificate in \(certs.client.certificate); give the matching key",
                "\(path):10:24: error: cannot read ca_file /nonexistent/ca.pem: no such file; check the path (a relative path is read from the conf file's directory)",
                "\(path):11:24: error: cannot read client_certificate \(certs.directory): it is a directory; name the PEM file itself",
            ])
    }

    /// What the text alone says: the same lines from the binary as from the loader.
    @Test func confDiagnostics() throws {
        let (path, r) = try run(
            "check",
            """
            listen 127.0.0.1:0 tls
            upstream plain {
                url     http://127.0.0.1:3000
                ca_file /ca.pem
            }
            upstream secure {
                url                https://127.0.0.1:3001
                tls_verify         off
                client_certificate /c.pem
            }
            route /a/ { upstream plain; allow_origin *; websocket on }

            """)
        #expect(r.status == 1)
        #expect(
            r.lines == [
                "\(path):1:20: error: listen … tls needs a top-level tls { certificate PATH; key PATH } block; add one, or remove tls",
                "\(path):4:5: error: ca_file applies only to https:// upstreams, and upstream plain is http://127.0.0.1:3000; remove ca_file or use an https:// URL",
                "\(path):8:24: warning: tls_verify off: the upstream's certificate and host name are not checked, so anyone on the network path can pose as it; give its CA with ca_file instead",
                "\(path):9:5: error: client_certificate needs client_key: add client_key PATH (the client certificate's private key, PEM)",
                "\(path):11:42: warning: '*' in allow_origin lets every site open a WebSocket here that carries the user's cookies (browsers apply no CORS to WebSocket, so the origin check is the only guard); list the origins, or write websocket off",
            ])
        let (blockPath, unused) = try run(
            "check", "listen 127.0.0.1:0\ntls { certificate /c.pem; key /k.pem }\n")
        #expect(unused.status == 1)  // the files are still read, and missing
        #expect(
            unused.lines.first
                == "\(blockPath):2:1: warning: tls { … } has no effect: no listen directive has tls; add one (listen 0.0.0.0:8443 tls) or remove the block"
        )
    }

    /// `serve` refuses the same files: nothing is served, the errors are on stderr.
    @Test func serveRefusesBadFiles() throws {
        let certs = try TestCertificates.shared()
        let (path, r) = try run(
            "serve",
            "listen 127.0.0.1:0\nupstream a { url https://127.0.0.1:1; ca_file \(certs.leaf.key) }\nroute / { upstream a }\n"
        )
        #expect(r.status == 1)
        #expect(
            r.lines == [
                "\(path):2:47: error: ca_file \(certs.leaf.key) is not a CA certificate bundle in PEM (a -----BEGIN CERTIFICATE----- block is missing or damaged); give it in PEM"
            ])
    }

    /// `explain` answers about CORS only and reads no file the conf names.
    @Test func explainReadsNoFiles() throws {
        let dir = try scratch()
        try
            "listen 127.0.0.1:0\nupstream a { url https://127.0.0.1:1; ca_file /nonexistent.pem }\nroute / { upstream a; allow_origin https://a.example }\n"
            .write(toFile: dir + "/proxy.conf", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = builtProductsDirectory().appendingPathComponent("cors-proxy")
        process.arguments = ["explain", "--config", dir + "/proxy.conf", "--origin", "https://a.example", "/x"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }
}
