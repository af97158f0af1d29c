import NIOCore
import NIOHTTP1
import NIOPosix
import ProxyConfig
import ServiceLifecycle

/// `/healthz`, `/readyz` and `/metrics` on the `admin` address. Stays up while
/// the proxy drains (readyz answers 503 then), and stops last.
package final class AdminService: Service, Sendable {
    private let channel: any Channel
    private let context: ServerContext

    /// Binds `address`; `renderMetrics` returns the Prometheus text.
    package init(
        address: ListenAddress, context: ServerContext, group: any EventLoopGroup,
        renderMetrics: @escaping @Sendable () -> [UInt8]
    ) async throws {
        self.context = context
        do {
            self.channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(
                            AdminHandler(context: context, renderMetrics: renderMetrics))
                    }
                }
                .bind(host: address.host, port: address.port)
                .get()
        } catch {
            throw ListenError(address: address, underlying: error)
        }
    }

    package var boundAddress: SocketAddress? { channel.localAddress }

    package func run() async throws {
        // The event is `listening`, like the browser-facing listeners; `msg` says which.
        context.logger.info(
            "admin listening",
            metadata: ["event": "listening", "address": "\(channel.localAddress.map(\.hostAndPort) ?? "?")"])
        try? await gracefulShutdown()
        try? await channel.close()
    }
}

final class AdminHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let context: ServerContext
    private let renderMetrics: @Sendable () -> [UInt8]

    init(context: ServerContext, renderMetrics: @escaping @Sendable () -> [UInt8]) {
        self.context = context
        self.renderMetrics = renderMetrics
    }

    func channelRead(context channelContext: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let status: HTTPResponseStatus
        var contentType = "text/plain; charset=utf-8"
        var body = channelContext.channel.allocator.buffer(capacity: 64)
        switch path {
        case "/healthz":
            status = .ok
            body.writeStaticString("ok\n")
        case "/readyz":
            if context.isDraining {
                status = .serviceUnavailable
                body.writeStaticString("draining\n")
            } else {
                status = .ok
                body.writeStaticString("ready\n")
            }
        case "/metrics":
            status = .ok
            contentType = "text/plain; version=0.0.4; charset=utf-8"
            body.writeBytes(renderMetrics())
            body.writeBytes(BuildInfo.prometheusLines)
        default:
            status = .notFound
            body.writeStaticString("not found: try /healthz, /readyz or /metrics\n")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        let response = HTTPResponseHead(version: head.version, status: status, headers: headers)
        channelContext.write(wrapOutboundOut(.head(response)), promise: nil)
        if head.method != .HEAD {
            channelContext.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        channelContext.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
