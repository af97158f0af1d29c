import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ProxyConfig
import ServiceLifecycle

/// The browser-facing listeners. Binds every address before serving (a bind
/// failure fails `bind()`), then serves until graceful shutdown, when it stops
/// accepting, closes idle connections and waits up to the drain timeout for the rest.
package final class ProxyListenerService: Service, Sendable {
    private let context: ServerContext
    private let group: any EventLoopGroup
    private let connections = ConnectionRegistry()
    private let drainTimeout: TimeAmount
    private let channels: [any Channel]
    /// Whether each of `channels` is a TLS listener.
    private let tls: [Bool]

    /// Binds every address; throws (with the address in the message) if one cannot be bound.
    package init(
        context: ServerContext, addresses: [ListenAddress], group: any EventLoopGroup, drainTimeout: TimeAmount
    ) async throws {
        self.context = context
        self.group = group
        self.drainTimeout = drainTimeout
        let connections = self.connections
        var channels: [any Channel] = []
        do {
            for address in addresses {
                let channel = try await ServerBootstrap(group: group)
                    .serverChannelOption(.backlog, value: 1024)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .serverChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(ConnectionRegistry.Collector(connections))
                        }
                    }
                    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .childChannelOption(.writeBufferWaterMark, value: .init(low: 32 * 1024, high: 64 * 1024))
                    .childChannelOption(.maxMessagesPerRead, value: 4)
                    .childChannelOption(.allowRemoteHalfClosure, value: false)
                    .childChannelInitializer { [tls = address.tls] channel in
                        channel.eventLoop.makeCompletedFuture {
                            guard tls else {
                                try channel.pipeline.syncOperations.addHandler(
                                    HTTP1ConnectionHandler(server: context, scheme: .http))
                                return
                            }
                            // The context of the conf in force now: a reload's rotated
                            // certificate reaches the connections made after it.
                            guard let sslContext = context.tlsContext else {
                                throw MissingTLSContext()
                            }
                            try TLSConnection.configure(channel, server: context, sslContext: sslContext)
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
        self.tls = addresses.map(\.tls)
    }

    /// The bound addresses (port 0 resolved), for logs and tests.
    package var boundAddresses: [SocketAddress] { channels.compactMap { $0.localAddress } }

    package func run() async throws {
        for (channel, tls) in zip(channels, tls) {
            guard let address = channel.localAddress else { continue }
            var metadata: Logger.Metadata = [
                "event": "listening", "address": "\(address.hostAndPort)", "port": "\(address.port ?? 0)",
            ]
            if tls { metadata["tls"] = "on" }
            context.logger.info("listening", metadata: metadata)
        }
        // Serve until a graceful shutdown (SIGTERM/SIGINT) or cancellation.
        try? await gracefulShutdown()
        await drain()
    }

    /// Stops accepting, closes idle connections, and waits for in-flight ones (their responses
    /// carry `Connection: close`), bounded by the drain timeout. Then each connection still open
    /// is told the drain time is over (a WebSocket tunnel sends its Close frame, 1001) and given
    /// a moment to close; whatever remains is closed.
    package func drain() async {
        context.startDraining()
        context.logger.info(
            "draining",
            metadata: [
                "event": "draining", "in_flight": "\(context.metrics.inFlight)",
                "tunnels": "\(context.metrics.openTunnels)",
            ])
        // Not awaited: the drain reaches the connections in the same step as the flag, so a busy
        // cooperative pool cannot leave in-flight responses unaware they are the last (the
        // registry closes anything the closing listeners still accept).
        for channel in channels { channel.close(promise: nil) }
        let loop = group.next()
        if await waitForConnections(on: loop, upTo: drainTimeout) {
            context.logger.info("drained", metadata: ["event": "drained"])
            return
        }
        context.logger.warning(
            "drain timeout passed; closing remaining connections",
            metadata: ["event": "drain_timeout", "connections": "\(connections.count)"])
        connections.broadcast(DrainTimeoutEvent())
        if await waitForConnections(on: loop, upTo: ExchangeStateMachine.goingAwayGrace + .milliseconds(500)) {
            return
        }
        connections.closeAll()
        _ = await waitForConnections(on: loop, upTo: .seconds(1))
    }

    /// True once no connection is left, false when `limit` passed first.
    private func waitForConnections(on loop: any EventLoop, upTo limit: TimeAmount) async -> Bool {
        let empty = loop.makePromise(of: Void.self)
        connections.drain(whenEmpty: empty)
        let timeout = loop.scheduleTask(in: limit) { empty.fail(DrainTimeout()) }
        do {
            try await empty.futureResult.get()
            timeout.cancel()
            return true
        } catch {
            return false
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

/// A TLS connection arrived with no TLS context: a conf with `listen … tls` and no usable
/// `tls { }` block is refused at load, so only a programming error gets here.
struct MissingTLSContext: Error {}

/// Sent to every connection still open when shutdown's drain time is over: a WebSocket tunnel
/// then gets its Close frame (1001, going away) and closes.
package struct DrainTimeoutEvent: Sendable {
    package init() {}
}
