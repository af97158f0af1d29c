import CCurl
import Foundation
import Logging
import NIOCore
import NIOSSL
import TestSupport
import Testing
import Upstream

@testable import CurlBridge

/// An HTTPS upstream serving `pair` (its certificate file may hold a chain); with `clientCA`,
/// it requires a client certificate signed by that CA.
func tlsUpstream(_ pair: TestCertificates.Pair, clientCA: String? = nil) async throws -> TestUpstream {
    let chain = try NIOSSLCertificate.fromPEMFile(pair.certificate).map { NIOSSLCertificateSource.certificate($0) }
    let key = NIOSSLPrivateKeySource.privateKey(try NIOSSLPrivateKey(file: pair.key, format: .pem))
    var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: key)
    if let clientCA {
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(clientCA))
    }
    return try await TestUpstream.start(tls: try NIOSSLContext(configuration: configuration))
}

/// Runs `body` with a started worker and `upstream`; stops both afterwards.
func withWorker(on upstream: TestUpstream, _ body: (CurlWorker) async throws -> Void) async throws {
    let worker = CurlWorker(logger: Logger(label: "curl-tls-test"))
    try await running(worker, upstreamClosed: upstream.record.allClosed, stop: upstream.stop) { try await body(worker) }
}

/// HTTPS upstreams through the worker: which CAs are trusted, host names, `tls_verify off`,
/// client certificates, the error kinds, and that a pooled connection is reused only by a
/// transfer with the same TLS settings.
@Suite struct CurlTLSTests {
    var certs: TestCertificates { get throws { try TestCertificates.shared() } }
    /// curl's connect timeout covers the TLS handshake: 2 s (the helpers' default) timed one out
    /// as `.timeout` instead of its `.tls` refusal when the whole suite loaded the 2 cores.
    static let handshakeBound = 10_000

    @Test func caFileTrustsThePrivateCA() async throws {
        let certs = try certs
        let upstream = try await tlsUpstream(TestCertificates.Pair(certificate: certs.leafChain, key: certs.leaf.key))
        try await withWorker(on: upstream) { worker in
            let (outcome, _) = try await exchange(
                worker,
                request(
                    upstream.url("/hello"), connectTimeout: Self.handshakeBound,
                    tls: UpstreamTLS(caFile: certs.ca.certificate)))
            #expect(outcome.status == 200, "\(outcome.terminal)")
            #expect(outcome.bodyString == "hello")
        }
    }

    @Test func theSystemStoreDoesNotTrustThePrivateCA() async throws {
        let certs = try certs
        let upstream = try await tlsUpstream(certs.leaf)
        try await withWorker(on: upstream) { worker in
            for tls in [nil, UpstreamTLS()] {
                let (outcome, _) = try await exchange(
                    worker, request(upstream.url("/hello"), connectTimeout: Self.handshakeBound, tls: tls))
                let error = try #require(outcome.terminal.error, "\(outcome.terminal)")
                #expect(error.kind == .tls)
                #expect(error.curlCode == Int32(bitPattern: CURLE_PEER_FAILED_VERIFICATION.rawValue))
                #expect(error.detail.contains("unable to get local issuer certificate"), "\(error.detail)")
                #expect(outcome.heads == 0)
            }
        }
    }

    @Test func anotherCAIsNotTrusted() async throws {
        let certs = try certs
        let upstream = try await tlsUpstream(certs.otherLeaf)
        try await withWorker(on: upstream) { worker in
            let (outcome, _) = try await exchange(
                worker,
                request(
                    upstream.url("/hello"), connectTimeout: Self.handshakeBound,
                    tls: UpstreamTLS(caFile: certs.ca.certificate)))
            #expect(outcome.terminal.error?.kind == .tls, "\(outcome.terminal)")
        }
    }

    @Test func aNameMismatchIsTLS() async throws {
        let certs = try certs
        let upstream = try await tlsUpstream(certs.wrongName)
        try await withWorker(on: upstream) { worker in
            let (outcome, _) = try await exchange(
                worker,
                request(
                    upstream.url("/hello"), connectTimeout: Self.handshakeBound,
                    tls: UpstreamTLS(caFile: certs.ca.certificate)))
            let error = try #require(outcome.terminal.error, "\(outcome.terminal)")
            #expect(error.kind == .tls)
            #expect(error.detail.contains("subject name"), "\(error.detail)")
        }
    }

    @Test func anExpiredCertificateIsTLS() async throws {
        let certs = try certs
        let upstream = try await tlsUpstream(certs.expired)
        try await withWorker(on: upstream) { worker in
            let (outcome, _) = try await exchange(
                worker,
                request(
                    upstream.url("/hello"), connectTimeout: Self.handshakeBound,
                    tls: UpstreamTLS(caFile: certs.ca.certificate)))
            let error = try #require(outcome.terminal.error, "\(outcome.terminal)")
            #expect(error.kind == .tls)
            #expect(error.detail.contains("expired"), "\(error.detail)")
        }
    }

    @Test func verifyOffAcceptsAnyCertificate() async throws {
        let certs = try certs
        let upstream = try await tlsUpstream(certs.wrongName)
        try await withWorker(on: upstream) { worker in
            let (outcome, _) = try await exchange(
                worker,
                request(upstream.url("/hello"), connectTimeout: Self.handshakeBound, tls: UpstreamTLS(verify: false)))
            #expect(outcome.status == 200, "\(outcome.terminal)")
        }
    }

    @Test func clientCertificate() async throws {
        let certs = try certs
        let upstream = try await tlsUpstream(certs.leaf, clientCA: certs.ca.certificate)
        let identified = UpstreamTLS(
            caFile: certs.ca.certificate, clientCertificate: certs.client.certificate, clientKey: certs.client.key)
        try await withWorker(on: upstream) { worker in
            let (good, _) = try await exchange(
                worker, request(upstream.url("/hello"), connectTimeout: Self.handshakeBound, tls: identified))
            #expect(good.status == 200, "\(good.terminal)")
            // Without one, the upstream refuses the handshake: under TLS 1.3 with an alert that
            // curl only reads after sending the request.
            let (refused, _) = try await exchange(
                worker,
                request(
                    upstream.url("/hello"), connectTimeout: Self.handshakeBound,
                    tls: UpstreamTLS(caFile: certs.ca.certificate)))
            let error = try #require(refused.terminal.error, "\(refused.terminal)")
            #expect(error.kind == .tls, "\(error)")
            #expect(refused.heads == 0)
            // A certificate of another CA is refused too.
            let (foreign, _) = try await exchange(
                worker,
                request(
                    upstream.url("/hello"), connectTimeout: Self.handshakeBound,
                    tls: UpstreamTLS(
                        caFile: certs.ca.certificate, clientCertificate: certs.otherLeaf.certificate,
                        clientKey: certs.otherLeaf.key)))
            #expect(foreign.terminal.error?.kind == .tls, "\(foreign.terminal)")
        }
    }

    /// curl pools a connection with the TLS settings it was made with. Each pair of transfers
    /// goes to the same upstream, one after the other on a reused handle: the second must not
    /// ride the first's connection, or it would skip its own checks (or borrow the first's
    /// client identity).
    @Test(arguments: ["client certificate, then none", "verify off, then on", "one CA, then another"])
    func pooledConnectionsAreNotSharedAcrossTLSSettings(_ scenario: String) async throws {
        let certs = try certs
        let (pair, clientCA, first, second): (TestCertificates.Pair, String?, UpstreamTLS, UpstreamTLS) =
            switch scenario {
            case "client certificate, then none":
                (
                    certs.leaf, certs.ca.certificate,
                    UpstreamTLS(
                        caFile: certs.ca.certificate, clientCertificate: certs.client.certificate,
                        clientKey: certs.client.key),
                    UpstreamTLS(caFile: certs.ca.certificate)
                )
            case "verify off, then on":
                (certs.wrongName, nil, UpstreamTLS(verify: false), UpstreamTLS(caFile: certs.ca.certificate))
            default:
                (
                    certs.leaf, nil, UpstreamTLS(caFile: certs.ca.certificate),
                    UpstreamTLS(caFile: certs.otherCA.certificate)
                )
            }
        let upstream = try await tlsUpstream(pair, clientCA: clientCA)
        try await withWorker(on: upstream) { worker in
            let (allowed, _) = try await exchange(
                worker, request(upstream.url("/hello"), connectTimeout: Self.handshakeBound, tls: first))
            #expect(allowed.status == 200, "\(allowed.terminal)")
            let (refused, _) = try await exchange(
                worker, request(upstream.url("/hello"), connectTimeout: Self.handshakeBound, tls: second))
            #expect(refused.terminal.error?.kind == .tls, "\(refused.terminal)")
            #expect(upstream.record.accepted.load(ordering: .relaxed) == 2)
            // The first settings still find their pooled connection.
            let (again, _) = try await exchange(
                worker, request(upstream.url("/hello"), connectTimeout: Self.handshakeBound, tls: first))
            #expect(again.status == 200, "\(again.terminal)")
            #expect(upstream.record.accepted.load(ordering: .relaxed) == 2)
        }
    }

    /// The counterpart: with the same settings the connection is reused, so the test above
    /// really watches the pool.
    @Test func sameSettingsReuseTheConnection() async throws {
        let certs = try certs
        let upstream = try await tlsUpstream(certs.leaf)
        try await withWorker(on: upstream) { worker in
            for _ in 0..<5 {
                let (outcome, _) = try await exchange(
                    worker,
                    request(
                        upstream.url("/hello"), connectTimeout: Self.handshakeBound,
                        tls: UpstreamTLS(caFile: certs.ca.certificate)))
                #expect(outcome.status == 200, "\(outcome.terminal)")
            }
            #expect(upstream.record.accepted.load(ordering: .relaxed) == 1)
        }
    }

    /// Without `ca_file`, handles get libcurl's own defaults back: the build's bundle and
    /// directory, never NULL (which would trust nothing at all).
    @Test func defaultTrustIsTheBuildsBundle() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl-config")
        process.arguments = ["--ca"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let bundle = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        process.waitUntilExit()
        #expect(!bundle.isEmpty)
        #expect(CurlGlobal.defaultCATrust.file == bundle)
        #expect(CurlGlobal.defaultCATrust.directory == "/etc/ssl/certs")
    }
}
