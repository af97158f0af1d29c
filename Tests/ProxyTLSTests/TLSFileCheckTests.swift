import Foundation
import NIOSSL
import ProxyConfig
import TestSupport
import Testing

@testable import ProxyTLS

/// Every file diagnostic, as exact lines at the argument that names the file.
@Suite struct TLSFileCheckTests {
    var now: Int64 { Int64(Date().timeIntervalSince1970) }

    func serverDiagnostics(certificate: String, key: String) -> [String] {
        TLSFileCheck.run(TLSFileReferences(server: serverSettings(certificate: certificate, key: key)), now: now).0
            .map(\.description)
    }

    @Test func goodPairGivesTheContextAndNoDiagnostic() throws {
        let certs = try TestCertificates.shared()
        let (diagnostics, context) = TLSFileCheck.run(
            TLSFileReferences(server: serverSettings(certificate: certs.leafChain, key: certs.leaf.key)), now: now)
        #expect(diagnostics.isEmpty)
        #expect(context != nil)
    }

    @Test func missingFiles() throws {
        let dir = try scratchDirectory()
        #expect(
            serverDiagnostics(certificate: dir + "/nope.pem", key: dir + "/nope.key") == [
                "proxy.conf:4:17: error: cannot read certificate \(dir)/nope.pem: no such file; check the path (a relative path is read from the conf file's directory)",
                "proxy.conf:5:17: error: cannot read key \(dir)/nope.key: no such file; check the path (a relative path is read from the conf file's directory)",
            ])
    }

    @Test func directoriesAndBrokenPaths() throws {
        let certs = try TestCertificates.shared()
        let dir = try scratchDirectory()
        #expect(
            serverDiagnostics(certificate: dir, key: certs.leaf.key + "/x") == [
                "proxy.conf:4:17: error: cannot read certificate \(dir): it is a directory; name the PEM file itself",
                "proxy.conf:5:17: error: cannot read key \(certs.leaf.key)/x: a part of the path is not a directory; check the path",
            ])
    }

    /// As root the permission bits do not stop a read, so the test runs where they do.
    @Test(.enabled(if: getuid() != 0)) func unreadableFile() throws {
        let certs = try TestCertificates.shared()
        let dir = try scratchDirectory()
        let locked = dir + "/locked.key"
        try FileManager.default.copyItem(atPath: certs.leaf.key, toPath: locked)
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: locked)
        #expect(
            serverDiagnostics(certificate: certs.leafChain, key: locked) == [
                "proxy.conf:5:17: error: cannot read key \(locked): permission denied; make it readable by the user cors-proxy runs as"
            ])
    }

    @Test func unparseableFiles() throws {
        let certs = try TestCertificates.shared()
        let dir = try scratchDirectory()
        let garbage = dir + "/garbage.pem"
        try "hello\n".write(toFile: garbage, atomically: true, encoding: .utf8)
        let der = dir + "/leaf.der"
        try TestCertificates.openssl(["x509", "-in", certs.leaf.certificate, "-outform", "DER", "-out", der])
        // A certificate where the key belongs and a key where the certificate belongs.
        #expect(
            serverDiagnostics(certificate: certs.leaf.key, key: certs.leaf.certificate) == [
                "proxy.conf:4:17: error: certificate \(certs.leaf.key) is not a certificate chain in PEM (a -----BEGIN CERTIFICATE----- block is missing or damaged); give it in PEM",
                "proxy.conf:5:17: error: key \(certs.leaf.certificate) is not a PEM private key; give the key in PEM, RSA or EC (-----BEGIN PRIVATE KEY-----, -----BEGIN RSA PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----)",
            ])
        #expect(
            serverDiagnostics(certificate: der, key: garbage) == [
                "proxy.conf:4:17: error: certificate \(der) is not a certificate chain in PEM (a -----BEGIN CERTIFICATE----- block is missing or damaged); give it in PEM",
                "proxy.conf:5:17: error: key \(garbage) is not a PEM private key; give the key in PEM, RSA or EC (-----BEGIN PRIVATE KEY-----, -----BEGIN RSA PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----)",
            ])
        // A damaged intermediate after a good leaf.
        let damaged = dir + "/damaged.pem"
        let ca = try String(contentsOfFile: certs.ca.certificate, encoding: .utf8)
        try
            (String(contentsOfFile: certs.leaf.certificate, encoding: .utf8)
            + ca.replacingOccurrences(of: "M", with: "#"))
            .write(toFile: damaged, atomically: true, encoding: .utf8)
        #expect(
            serverDiagnostics(certificate: damaged, key: certs.leaf.key) == [
                "proxy.conf:4:17: error: certificate \(damaged) is not a certificate chain in PEM (a -----BEGIN CERTIFICATE----- block is missing or damaged); give it in PEM"
            ])
    }

    @Test func encryptedKey() throws {
        let certs = try TestCertificates.shared()
        #expect(
            serverDiagnostics(certificate: certs.leafChain, key: certs.encryptedKey) == [
                "proxy.conf:5:17: error: key \(certs.encryptedKey) is encrypted, and cors-proxy cannot ask for a passphrase; store the key decrypted (openssl pkey -in KEY -out KEY.pem), readable only by the proxy's user"
            ])
    }

    @Test func keyOfAnotherCertificate() throws {
        let certs = try TestCertificates.shared()
        #expect(
            serverDiagnostics(certificate: certs.leafChain, key: certs.otherKey) == [
                "proxy.conf:5:17: error: the key in \(certs.otherKey) does not belong to the certificate in \(certs.leafChain) (the first certificate there must be the leaf this key was made for); give the matching key, or put the leaf first"
            ])
    }

    @Test func expiredAndExpiringLeaves() throws {
        let certs = try TestCertificates.shared()
        let expired = try expiryDate(certs.expired.certificate)
        #expect(
            serverDiagnostics(certificate: certs.expired.certificate, key: certs.expired.key) == [
                "proxy.conf:4:17: warning: the certificate in \(certs.expired.certificate) expired on \(expired); browsers refuse it: renew it"
            ])
        let expiring = try expiryDate(certs.expiring.certificate)
        #expect(
            serverDiagnostics(certificate: certs.expiring.certificate, key: certs.expiring.key) == [
                "proxy.conf:4:17: warning: the certificate in \(certs.expiring.certificate) expires on \(expiring), in 5 days; renew it before then"
            ])
        // 90 days left: nothing to say.
        #expect(serverDiagnostics(certificate: certs.leaf.certificate, key: certs.leaf.key) == [])
        // An expired leaf with the wrong key: both are said.
        #expect(
            serverDiagnostics(certificate: certs.expired.certificate, key: certs.otherKey).map {
                $0.components(separatedBy: ": ")[1]
            } == ["error", "warning"])
    }

    @Test func expiryBoundaries() throws {
        let certs = try TestCertificates.shared()
        let leaf = try #require(try NIOSSLCertificateLoader.first(certs.leaf.certificate))
        let notAfter = Int64(leaf.notValidAfter)
        let file = confFile(certs.leaf.certificate, line: 1, column: 1)
        #expect(TLSFileCheck.expiryWarning(leaf, file, now: notAfter - 14 * 86_400 - 1) == nil)
        #expect(
            TLSFileCheck.expiryWarning(leaf, file, now: notAfter - 14 * 86_400)?.message.hasSuffix(
                "in 14 days; renew it before then") == true)
        #expect(
            TLSFileCheck.expiryWarning(leaf, file, now: notAfter - 86_400 - 1)?.message.contains(", in 2 days;") == true
        )
        #expect(TLSFileCheck.expiryWarning(leaf, file, now: notAfter - 86_400)?.message.contains(", in 1 day;") == true)
        #expect(TLSFileCheck.expiryWarning(leaf, file, now: notAfter - 1)?.message.contains(", in 1 day;") == true)
        #expect(TLSFileCheck.expiryWarning(leaf, file, now: notAfter)?.message.contains("expired on") == true)
    }

    @Test(arguments: [
        (Int64(0), "1970-01-01"), (951_782_400, "2000-02-29"), (1_735_689_599, "2024-12-31"),
        (1_735_689_600, "2025-01-01"), (-1, "1969-12-31"), (4_107_542_400, "2100-03-01"),
    ])
    func dates(_ seconds: Int64, _ date: String) {
        #expect(TLSFileCheck.formatDate(seconds) == date)
    }

    @Test func upstreamFiles() throws {
        let certs = try TestCertificates.shared()
        let dir = try scratchDirectory()
        let good = UpstreamTLSSettings(
            caFile: confFile(certs.ca.certificate, line: 10, column: 24),
            clientIdentity: ClientIdentity(
                certificate: confFile(certs.client.certificate, line: 12, column: 24),
                key: confFile(certs.client.key, line: 13, column: 24)))
        let missingCA = UpstreamTLSSettings(caFile: confFile(dir + "/ca.pem", line: 20, column: 24))
        let garbageCA = UpstreamTLSSettings(caFile: confFile(certs.client.key, line: 25, column: 24))
        let mismatched = UpstreamTLSSettings(
            clientIdentity: ClientIdentity(
                certificate: confFile(certs.client.certificate, line: 30, column: 24),
                key: confFile(certs.otherKey, line: 31, column: 24)))
        let unreadable = UpstreamTLSSettings(
            clientIdentity: ClientIdentity(
                certificate: confFile(dir + "/client.pem", line: 40, column: 24),
                key: confFile(certs.client.certificate, line: 41, column: 24)))
        let (diagnostics, context) = TLSFileCheck.run(
            TLSFileReferences(upstreams: [
                "a": good, "b": missingCA, "c": garbageCA, "d": mismatched, "e": unreadable,
                "f": UpstreamTLSSettings(),
            ]), now: now)
        #expect(context == nil)
        #expect(
            diagnostics.map(\.description) == [
                "proxy.conf:20:24: error: cannot read ca_file \(dir)/ca.pem: no such file; check the path (a relative path is read from the conf file's directory)",
                "proxy.conf:25:24: error: ca_file \(certs.client.key) is not a CA certificate bundle in PEM (a -----BEGIN CERTIFICATE----- block is missing or damaged); give it in PEM",
                "proxy.conf:31:24: error: the client_key in \(certs.otherKey) does not belong to the client_certificate in \(certs.client.certificate); give the matching key",
                "proxy.conf:40:24: error: cannot read client_certificate \(dir)/client.pem: no such file; check the path (a relative path is read from the conf file's directory)",
                "proxy.conf:41:24: error: client_key \(certs.client.certificate) is not a PEM private key; give the key in PEM, RSA or EC (-----BEGIN PRIVATE KEY-----, -----BEGIN RSA PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----)",
            ])
    }

    /// Through a real conf: parse errors and file errors together, in source order, and no
    /// configuration; a clean conf keeps its configuration and gets the listeners' context.
    @Test func mergedIntoTheLoadResult() throws {
        let certs = try TestCertificates.shared()
        let dir = try scratchDirectory()
        let conf = """
            listen 127.0.0.1:0 tls
            tls {
                certificate \(certs.leafChain)
                key         missing.key
            }
            bogus
            upstream u {
                url     https://127.0.0.1:1
                ca_file \(certs.ca.certificate)
            }

            """
        let checked = TLSFileCheck.check(
            ProxyConfig.load(text: conf, path: dir + "/proxy.conf", environment: [:]), now: now)
        #expect(checked.result.configuration == nil)
        #expect(checked.serverTLSContext == nil)
        #expect(
            checked.result.diagnostics.map(\.description) == [
                "\(dir)/proxy.conf:4:17: error: cannot read key \(dir)/missing.key: no such file; check the path (a relative path is read from the conf file's directory)",
                "\(dir)/proxy.conf:6:1: error: unknown directive 'bogus'; expected one of: listen, admin, self_origin, upstream, max_body_size, drain_timeout, log_format, cors, route, tls",
            ])

        let clean = conf.replacingOccurrences(of: "missing.key", with: certs.leaf.key)
            .replacingOccurrences(of: "bogus\n", with: "")
        let good = TLSFileCheck.check(
            ProxyConfig.load(text: clean, path: dir + "/proxy.conf", environment: [:]), now: now)
        #expect(good.result.diagnostics.isEmpty)
        #expect(good.result.configuration != nil)
        let context = try #require(good.serverTLSContext)
        #expect(try handshake(serverContext: context, trusting: [certs.ca.certificate]).get() == "h2")
    }

    /// Warnings keep the configuration (an expiring certificate still serves).
    @Test func warningsKeepTheConfiguration() throws {
        let certs = try TestCertificates.shared()
        let conf =
            "listen 127.0.0.1:0 tls\ntls { certificate \(certs.expiring.certificate); key \(certs.expiring.key) }\n"
        let checked = TLSFileCheck.check(ProxyConfig.load(text: conf, path: "p.conf", environment: [:]), now: now)
        #expect(checked.result.configuration != nil)
        #expect(checked.result.warnings.count == 1)
        #expect(checked.serverTLSContext != nil)
    }
}

/// The first certificate of a PEM file.
enum NIOSSLCertificateLoader {
    static func first(_ path: String) throws -> NIOSSLCertificate? {
        try NIOSSLCertificate.fromPEMFile(path).first
    }
}
