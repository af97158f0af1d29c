import Foundation
import NIOCore
import NIOEmbedded
import NIOSSL
import NIOTLS
import ProxyConfig
import TestSupport
import Testing

/// A `ConfFile` for `path`, written at `line`:`column` of `proxy.conf`.
func confFile(_ path: String, line: Int, column: Int) -> ConfFile {
    ConfFile(path: path, position: ConfPosition(file: "proxy.conf", line: line, column: column))
}

/// `tls { }` settings for two files, at fixed positions (certificate at 4:17, key at 5:17).
func serverSettings(
    certificate: String, key: String, http2: Bool = true, minimumVersion: MinimumTLSVersion = .tls12
) -> ServerTLSSettings {
    ServerTLSSettings(
        certificate: confFile(certificate, line: 4, column: 17), key: confFile(key, line: 5, column: 17),
        http2: http2, minimumVersion: minimumVersion,
        position: ConfPosition(file: "proxy.conf", line: 3, column: 1))
}

/// Records the handshake's outcome as the client sees it.
final class HandshakeRecorder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var completed: TLSUserEvent?

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent { completed = event }
        context.fireUserInboundEventTriggered(event)
    }
}

/// A handshake between a NIOSSL client and `serverContext` over two `EmbeddedChannel`s,
/// bytes moved by hand (no sockets): the protocol the server chose by ALPN, or the error.
func handshake(
    serverContext: NIOSSLContext, trusting roots: [String], offering protocols: [String] = ["h2", "http/1.1"],
    maximumVersion: MinimumTLSVersion? = nil
) throws -> Result<String?, any Error> {
    var configuration = TLSConfiguration.makeClientConfiguration()
    configuration.trustRoots = .certificates(try roots.flatMap { try NIOSSLCertificate.fromPEMFile($0) })
    configuration.applicationProtocols = protocols
    if let maximumVersion {
        configuration.maximumTLSVersion = maximumVersion == .tls12 ? NIOSSL.TLSVersion.tlsv12 : .tlsv13
    }
    let clientContext = try NIOSSLContext(configuration: configuration)

    let recorder = HandshakeRecorder()
    let client = EmbeddedChannel()
    let server = EmbeddedChannel()
    func shuttle() throws {
        var moved = true
        while moved {
            moved = false
            while let bytes = try client.readOutbound(as: ByteBuffer.self) {
                try server.writeInbound(bytes)
                moved = true
            }
            while let bytes = try server.readOutbound(as: ByteBuffer.self) {
                try client.writeInbound(bytes)
                moved = true
            }
        }
    }
    defer {
        // A TLS close waits for the peer's close_notify: carry it, then let the shutdown
        // timeout (virtual time) end whatever is left, so finish() never blocks.
        client.close(promise: nil)
        server.close(promise: nil)
        try? shuttle()
        client.embeddedEventLoop.advanceTime(by: .seconds(60))
        server.embeddedEventLoop.advanceTime(by: .seconds(60))
        _ = try? client.finish(acceptAlreadyClosed: true)
        _ = try? server.finish(acceptAlreadyClosed: true)
    }
    try client.pipeline.syncOperations.addHandler(
        try NIOSSLClientHandler(context: clientContext, serverHostname: "localhost"))
    try client.pipeline.syncOperations.addHandler(recorder)
    try server.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: serverContext))
    let address = try SocketAddress(ipAddress: "127.0.0.1", port: 443)
    _ = client.connect(to: address)
    _ = server.connect(to: address)
    do {
        try shuttle()
        try client.throwIfErrorCaught()
        try server.throwIfErrorCaught()
    } catch {
        return .failure(error)
    }
    guard case .handshakeCompleted(let negotiated) = recorder.completed else {
        return .failure(TestFailure("the handshake did not complete"))
    }
    return .success(negotiated)
}

/// The `notAfter` date of a certificate file as openssl prints it: `YYYY-MM-DD`.
func expiryDate(_ certificate: String) throws -> String {
    let line = try TestCertificates.openssl(["x509", "-in", certificate, "-noout", "-enddate", "-dateopt", "iso_8601"])
    // notAfter=2026-12-11 01:52:00Z
    return String(line.dropFirst("notAfter=".count).prefix(10))
}

/// A scratch directory for files a test writes.
func scratchDirectory() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("proxytls-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
