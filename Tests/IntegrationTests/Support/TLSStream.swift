import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import TestSupport

/// A TLS connection to 127.0.0.1 (NIOSSL, ALPN `http/1.1` as a browser's `wss://` connection
/// offers it), as a blocking `ByteStream` for TestSupport's WebSocket client: what arrives is
/// collected on the event loop and handed out by `read`, bounded by the timeout.
final class TLSStream: ByteStream, @unchecked Sendable {
    private let channel: any Channel
    private let inbox: Inbox
    private let timeoutSeconds: Double

    /// Trusts only `caFile`; the certificate must name 127.0.0.1 (checked against the peer's address).
    init(port: Int, caFile: String, timeoutSeconds: Double = 15) throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(caFile)
        configuration.applicationProtocols = ["http/1.1"]
        let context = try NIOSSLContext(configuration: configuration)
        let inbox = Inbox()
        self.inbox = inbox
        self.timeoutSeconds = timeoutSeconds
        channel = try ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(Int64(timeoutSeconds)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
                    try sync.addHandler(Collector(inbox))
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .wait()
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try channel.writeAndFlush(ByteBuffer(bytes: bytes)).wait()
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try inbox.take(into: buffer, timeoutSeconds: timeoutSeconds)
    }

    func shutdownWrite() {
        channel.close(mode: .output, promise: nil)
    }

    func close() {
        channel.close(promise: nil)
    }

    deinit { channel.close(promise: nil) }

    /// The bytes received and not yet read, and how the connection ended.
    private final class Inbox: @unchecked Sendable {
        private let condition = NSCondition()
        private var bytes: [UInt8] = []
        private var ended = false
        private var error: (any Error)?

        func append(_ buffer: ByteBuffer) {
            condition.withLock {
                bytes += buffer.readableBytesView
                condition.broadcast()
            }
        }

        func end(_ error: (any Error)? = nil) {
            condition.withLock {
                ended = true
                if self.error == nil { self.error = error }
                condition.broadcast()
            }
        }

        func take(into buffer: UnsafeMutableRawBufferPointer, timeoutSeconds: Double) throws -> Int {
            let deadline = Date().addingTimeInterval(timeoutSeconds)
            condition.lock()
            defer { condition.unlock() }
            while bytes.isEmpty && !ended {
                guard condition.wait(until: deadline) else { throw TestTimeout(what: "bytes over TLS") }
            }
            if bytes.isEmpty {
                if let error { throw error }
                return 0
            }
            let n = min(buffer.count, bytes.count)
            bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            bytes.removeFirst(n)
            return n
        }
    }

    private final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        private let inbox: Inbox

        init(_ inbox: Inbox) { self.inbox = inbox }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            inbox.append(unwrapInboundIn(data))
        }

        func channelInactive(context: ChannelHandlerContext) {
            inbox.end()
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // A peer that closes without close_notify is an EOF here, as for a browser.
            if let ssl = error as? NIOSSLError, case .uncleanShutdown = ssl {
                inbox.end()
            } else {
                inbox.end(error)
            }
            context.close(promise: nil)
        }
    }
}
