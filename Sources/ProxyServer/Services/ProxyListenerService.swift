import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOPosix
import ProxyConfig
import ServiceLifecycle

/// The browser-facing listeners. Binds every address before serving (a bind
/// failure fails `bind()`), then serves until graceful shutdown, when it stops
/// accepting, closes idle connections and waits up to the drain timeout for the rest.
package final class ProxyListenerService: Service, Sendable {
    private let context: ServerContext
    private let group: any EventLoopGroup
    /// Taken by `drain`, so that it is freed there, while the event loops run: its deinit
    /// completes a promise on a loop, which on a stopped loop makes NIO print an error (or
    /// trap, when stderr is gone).
    private let quiesce: NIOLockedValueBox<ServerQuiescingHelper?>
    private let drainTimeout: TimeAmount
    private let channels: [any Channel]

    /// Binds every address; throws (with the address in the message) if one cannot be bound.
    package init(
        context: ServerContext, addresses: [ListenAddress], group: any EventLoopGroup, drainTimeout: TimeAmount
    ) async throws {
        self.context = context
        self.group = group
        self.drainTimeout = drainTimeout
        let quiesce = ServerQuiescingHelper(group: group)
        self.quiesce = NIOLockedValueBox(quiesce)
        var channels: [any Channel] = []
        do {
            for address in addresses {
                let channel = try await ServerBootstrap(group: group)
                    .serverChannelOption(.backlog, value: 1024)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .serverChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(
                                quiesce.makeServerChannelHandler(channel: channel))
                        }
                    }
                    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .childChannelOption(.writeBufferWaterMark, value: .init(low: 32 * 1024, high: 64 * 1024))
                    .childChannelOption(.maxMessagesPerRead, value: 4)
                    .childChannelOption(.allowRemoteHalfClosure, value: false)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(
                                HTTP1ConnectionHandler(server: context, scheme: .http))
                        }
                    }
                    .bind(host: address.host, port: address.port)
                    .get()
                channels.append(channel)
            }
        } catch {
            for channel in channels { try? await channel.close() }
            throw ListenError(address: addresses[channels.count], underlying: error)
        }
        self.channels = channels
    }

    /// The bound addresses (port 0 resolved), for logs and tests.
    package var boundAddresses: [SocketAddress] { channels.compactMap { $0.localAddress } }

    package func run() async throws {
        for address in boundAddresses {
            context.logger.info(
                "listening",
                metadata: ["event": "listening", "address": "\(address.hostAndPort)", "port": "\(address.port ?? 0)"])
        }
        // Serve until a graceful shutdown (SIGTERM/SIGINT) or cancellation.
        try? await gracefulShutdown()
        await drain()
    }

    /// Stops accepting, closes idle connections, and waits for in-flight ones
    /// (their responses carry `Connection: close`), bounded by the drain timeout.
    package func drain() async {
        context.startDraining()
        context.logger.info("draining", metadata: ["event": "draining", "in_flight": "\(context.metrics.inFlight)"])
        guard let quiesce = self.quiesce.withLockedValue({ $0.take() }) else { return }
        let done = group.next().makePromise(of: Void.self)
        quiesce.initiateShutdown(promise: done)
        let timeout = group.next().scheduleTask(in: drainTimeout) {
            done.fail(DrainTimeout())
        }
        do {
            try await done.futureResult.get()
            timeout.cancel()
            context.logger.info("drained", metadata: ["event": "drained"])
        } catch {
            context.logger.warning(
                "drain timeout passed; closing remaining connections", metadata: ["event": "drain_timeout"])
        }
    }

    struct DrainTimeout: Error {}
}

extension SocketAddress {
    /// `127.0.0.1:8080` or `[::1]:8080`, for log lines (NIO's description adds the family).
    var hostAndPort: String {
        guard let ip = ipAddress else { return "\(self)" }
        let host = ip.contains(":") ? "[\(ip)]" : ip
        return "\(host):\(port ?? 0)"
    }
}

/// A listener that could not be bound.
package struct ListenError: Error, CustomStringConvertible {
    package var address: ListenAddress
    package var underlying: any Error
    package var description: String { "cannot listen on \(address): \(underlying)" }
}
