import NIOConcurrencyHelpers
import NIOCore

/// The connections a listener accepted, for its shutdown: each is told to drain
/// (`ChannelShouldQuiesceEvent`: idle ones close, busy ones finish with `Connection: close`),
/// the ones still open when the drain time is over are told so (`DrainTimeoutEvent`: a
/// WebSocket tunnel sends its Close frame), and the registry knows when the last one is gone.
///
/// Our own rather than NIOExtras' `ServerQuiescingHelper`, which has no way to reach the
/// connections after the drain time and completes a promise on an event loop from its deinit.
final class ConnectionRegistry: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var draining = false
        var whenEmpty: [EventLoopPromise<Void>] = []
    }

    private let state = NIOLockedValueBox(State())

    /// Added to each server channel: records every accepted connection until it closes.
    final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = any Channel
        private let registry: ConnectionRegistry

        init(_ registry: ConnectionRegistry) { self.registry = registry }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let channel = unwrapInboundIn(data)
            guard registry.add(channel) else {
                // Accepted while the listener was closing: not served.
                channel.close(promise: nil)
                return
            }
            context.fireChannelRead(data)
        }
    }

    /// The connections open now.
    var count: Int { state.withLockedValue { $0.channels.count } }

    private func add(_ channel: any Channel) -> Bool {
        let key = ObjectIdentifier(channel)
        let added = state.withLockedValue { state -> Bool in
            if state.draining { return false }
            state.channels[key] = channel
            return true
        }
        if added {
            channel.closeFuture.whenComplete { [self] _ in remove(key) }
        }
        return added
    }

    private func remove(_ key: ObjectIdentifier) {
        let waiters: [EventLoopPromise<Void>] = state.withLockedValue { state in
            state.channels[key] = nil
            guard state.channels.isEmpty else { return [] }
            defer { state.whenEmpty = [] }
            return state.whenEmpty
        }
        for promise in waiters { promise.succeed() }
    }

    /// Stops registering, tells every connection to drain; `promise` succeeds when none is left.
    func drain(whenEmpty promise: EventLoopPromise<Void>) {
        let channels: [any Channel] = state.withLockedValue { state in
            state.draining = true
            if !state.channels.isEmpty { state.whenEmpty.append(promise) }
            return Array(state.channels.values)
        }
        if channels.isEmpty { promise.succeed() }
        for channel in channels { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
    }

    /// Sends `event` to every connection still open.
    func broadcast(_ event: some Sendable) {
        let channels = state.withLockedValue { Array($0.channels.values) }
        for channel in channels { channel.pipeline.fireUserInboundEventTriggered(event) }
    }

    /// Closes every connection still open.
    func closeAll() {
        let channels = state.withLockedValue { Array($0.channels.values) }
        for channel in channels { channel.close(promise: nil) }
    }
}
