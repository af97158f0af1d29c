import Foundation
import NIOSSL
import ProxyConfig
import TestSupport
import Testing

@testable import ProxyTLS

/// The listeners' context: a real NIOSSL client handshakes with it (in memory) and sees the
/// chain, the ALPN choice and the version floor the `tls { }` block asked for.
@Suite struct ServerTLSContextTests {
    @Test func offersH2ThenHTTP11() throws {
        let certs = try TestCertificates.shared()
        let context = try ServerTLSContext.make(serverSettings(certificate: certs.leafChain, key: certs.leaf.key))
        #expect(try handshake(serverContext: context, trusting: [certs.ca.certificate]).get() == "h2")
        #expect(
            try handshake(serverContext: context, trusting: [certs.ca.certificate], offering: ["http/1.1"]).get()
                == "http/1.1")
        // A client without ALPN still gets a handshake (and then speaks HTTP/1.1).
        #expect(try handshake(serverContext: context, trusting: [certs.ca.certificate], offering: []).get() == nil)
    }

    @Test func http2OffOffersOnlyHTTP11() throws {
        let certs = try TestCertificates.shared()
        let context = try ServerTLSContext.make(
            serverSettings(certificate: certs.leafChain, key: certs.leaf.key, http2: false))
        #expect(try handshake(serverContext: context, trusting: [certs.ca.certificate]).get() == "http/1.1")
    }

    @Test func minimumVersion13RefusesATLS12Client() throws {
        let certs = try TestCertificates.shared()
        let strict = try ServerTLSContext.make(
            serverSettings(certificate: certs.leafChain, key: certs.leaf.key, minimumVersion: .tls13))
        let outcome = try handshake(serverContext: strict, trusting: [certs.ca.certificate], maximumVersion: .tls12)
        #expect(throws: (any Error).self) { try outcome.get() }
        #expect(try handshake(serverContext: strict, trusting: [certs.ca.certificate]).get() == "h2")
        // The default (1.2) lets that client in.
        let lenient = try ServerTLSContext.make(serverSettings(certificate: certs.leafChain, key: certs.leaf.key))
        #expect(
            try handshake(serverContext: lenient, trusting: [certs.ca.certificate], maximumVersion: .tls12).get()
                == "h2")
    }

    /// The chain is served whole: a client that trusts only the CA verifies a leaf-only file too,
    /// but one that is given neither fails, so verification is really on in this harness.
    @Test func untrustedClientFails() throws {
        let certs = try TestCertificates.shared()
        let context = try ServerTLSContext.make(serverSettings(certificate: certs.leafChain, key: certs.leaf.key))
        let outcome = try handshake(serverContext: context, trusting: [certs.otherCA.certificate])
        #expect(throws: (any Error).self) { try outcome.get() }
    }

    @Test(arguments: ["pkcs8 EC", "traditional EC", "traditional RSA"])
    func keyFormats(_ format: String) throws {
        let certs = try TestCertificates.shared()
        let (certificate, key) =
            switch format {
            case "traditional EC": (certs.leaf.certificate, certs.ecTraditionalKey)
            case "traditional RSA": (certs.rsaLeaf.certificate, certs.rsaLeaf.key)
            default: (certs.leaf.certificate, certs.leaf.key)
            }
        let header = try String(contentsOfFile: key, encoding: .utf8).split(separator: "\n").first
        let expectedHeader =
            switch format {
            case "traditional EC": "-----BEGIN EC PRIVATE KEY-----"
            case "traditional RSA": "-----BEGIN RSA PRIVATE KEY-----"
            default: "-----BEGIN PRIVATE KEY-----"
            }
        #expect(header.map(String.init) == expectedHeader)
        let context = try ServerTLSContext.make(serverSettings(certificate: certificate, key: key))
        #expect(try handshake(serverContext: context, trusting: [certs.ca.certificate]).get() == "h2")
    }

    /// NIOSSL's context creation is what compares the key with the leaf: prove it refuses.
    @Test func mismatchedKeyIsRefusedAtTheKey() throws {
        let certs = try TestCertificates.shared()
        #expect {
            try ServerTLSContext.make(serverSettings(certificate: certs.leafChain, key: certs.otherKey))
        } throws: { error in
            (error as? TLSFileErrors)?.diagnostics.map(\.description) == [
                "proxy.conf:5:17: error: the key in \(certs.otherKey) does not belong to the certificate in \(certs.leafChain) (the first certificate there must be the leaf this key was made for); give the matching key, or put the leaf first"
            ]
        }
        // The CA first, then the leaf: the key is the leaf's, but the first certificate is not.
        let dir = try scratchDirectory()
        let reversed = dir + "/reversed.pem"
        try
            (String(contentsOfFile: certs.ca.certificate, encoding: .utf8)
            + String(contentsOfFile: certs.leaf.certificate, encoding: .utf8)).write(
                toFile: reversed, atomically: true, encoding: .utf8)
        #expect(throws: TLSFileErrors.self) {
            try ServerTLSContext.make(serverSettings(certificate: reversed, key: certs.leaf.key))
        }
    }

    /// Each call reads the files again: a certificate rotated on disk is what the next
    /// (re)load serves.
    @Test func eachCallReadsTheFilesAgain() throws {
        let certs = try TestCertificates.shared()
        let dir = try scratchDirectory()
        let certificate = dir + "/cert.pem"
        let key = dir + "/key.pem"
        func install(_ pair: TestCertificates.Pair) throws {
            try FileManager.default.removeItem(atPath: dir)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: pair.certificate, toPath: certificate)
            try FileManager.default.copyItem(atPath: pair.key, toPath: key)
        }
        try install(certs.leaf)
        let before = try ServerTLSContext.make(serverSettings(certificate: certificate, key: key))
        try install(certs.otherLeaf)
        let after = try ServerTLSContext.make(serverSettings(certificate: certificate, key: key))
        #expect(try handshake(serverContext: before, trusting: [certs.ca.certificate]).get() == "h2")
        #expect(throws: (any Error).self) {
            try handshake(serverContext: before, trusting: [certs.otherCA.certificate]).get()
        }
        #expect(try handshake(serverContext: after, trusting: [certs.otherCA.certificate]).get() == "h2")
        #expect(throws: (any Error).self) {
            try handshake(serverContext: after, trusting: [certs.ca.certificate]).get()
        }
    }
}
