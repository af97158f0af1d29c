import Logging
import NIOCore
import NIOHTTP2
import NIOSSL
import NIOTLS

/// The pipeline of a connection to a `listen … tls` address:
///
/// ```
/// PlaintextGuard ─▶ NIOSSLServerHandler ─▶ TLSHandshakeWatcher ─▶ ALPN ─┬─ h2:       HTTP2Connection
///                                                                       └─ otherwise: HTTP1ConnectionHandler
/// ```
enum TLSConnection {
    /// A handshake not finished this long after the connection opened is given up (a broken or
    /// truncated ClientHello must not hold a connection until the idle timeout).
    static let handshakeTimeout = TimeAmount.seconds(5)

    static func configure(_ channel: any Channel, server: ServerContext, sslContext: NIOSSLContext) throws {
        let sync = channel.pipeline.syncOperations
        let watcher = TLSHandshakeWatcher(server: server)
        try sync.addHandler(PlaintextGuard(server: server, watcher: watcher))
        try sync.addHandler(NIOSSLServerHandler(context: sslContext))
        try sync.addHandler(watcher)
        try sync.addHandler(
            ApplicationProtocolNegotiationHandler { result, channel in
                channel.eventLoop.makeCompletedFuture {
                    switch result {
                    case .negotiated("h2"):
                        try HTTP2Connection.configure(channel, server: server)
                    default:
                        try channel.pipeline.syncOperations.addHandler(
                            HTTP1ConnectionHandler(server: server, scheme: .https))
                    }
                }
            })
    }
}

/// The first byte of a TLS connection is a handshake record (0x16). A plain HTTP request sent
/// to a TLS port gets a short 400 that says so (as nginx answers), anything else a close; both
/// before NIOSSL sees a byte. After the first read this handler removes itself.
final class PlaintextGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let server: ServerContext
    /// Told when a handshake record arrives: only then is a failure the client's handshake failing.
    private let watcher: TLSHandshakeWatcher

    init(server: ServerContext, watcher: TLSHandshakeWatcher) {
        self.server = server
        self.watcher = watcher
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard let first = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) else { return }
        if first == 0x16 {
            watcher.handshakeStarted()
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        if (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(first) {
            let body = "plain HTTP request sent to a TLS port\n"
            var response = context.channel.allocator.buffer(capacity: 160)
            response.writeString(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            )
            context.writeAndFlush(wrapOutboundOut(response)).whenComplete { [channel = context.channel] _ in
                channel.close(promise: nil)
            }
        } else {
            context.close(promise: nil)
        }
    }
}

/// Counts and closes failed handshakes (`cors_proxy_tls_handshake_errors_total`, a debug line:
/// the peer is at fault, not the proxy), and gives up on a handshake that takes longer than
/// `TLSConnection.handshakeTimeout`. A connection closed before it sent anything is not counted:
/// NIOSSL starts the server's handshake as the connection opens, so it reports that close as a
/// failed handshake (`eofDuringHandshake`), and only `PlaintextGuard` knows whether a byte came.
final class TLSHandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let server: ServerContext
    private var timeout: Scheduled<Void>?
    private var counted = false
    private var started = false

    init(server: ServerContext) {
        self.server = server
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        timeout = context.eventLoop.scheduleTask(in: TLSConnection.handshakeTimeout) {
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
        timeout = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            timeout?.cancel()
            timeout = nil
            context.fireUserInboundEventTriggered(event)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// The client sent a TLS handshake record.
    func handshakeStarted() {
        started = true
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if started && !counted {
            counted = true
            server.metrics.tlsHandshakeFailed()
            server.logger.debug(
                "TLS handshake failed", metadata: ["event": "tls_handshake_error", "error": "\(error)"])
        }
        context.close(promise: nil)
    }
}
