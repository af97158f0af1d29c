import HeaderFields
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import ProxyConfig
import ProxyLog
import Upstream

@testable import ProxyServer

/// An `UpstreamTransport` the test drives by hand: it records what the server asks of
/// each transfer, and the test delivers the upstream's events (on the transfer's event
/// loop; with an EmbeddedChannel that is the test's own thread).
final class FakeUpstream: UpstreamTransport, @unchecked Sendable {
    final class Transfer: UpstreamTransfer, @unchecked Sendable {
        /// The forwarded request (for a tunnel: its URL, method GET, no headers; see `tunnel`).
        let request: TransferRequest
        /// The WebSocket handshake, for a tunnel.
        let tunnel: TunnelRequest?
        let eventLoop: any EventLoop
        private let handler: @Sendable (UpstreamEvent) -> Void
        private(set) var body: [UInt8] = []
        private(set) var ended = false
        private(set) var cancelled = false
        private(set) var consumed = 0
        private(set) var clientWritable = true

        init(
            request: TransferRequest, tunnel: TunnelRequest? = nil, eventLoop: any EventLoop,
            handler: @escaping @Sendable (UpstreamEvent) -> Void
        ) {
            self.request = request
            self.tunnel = tunnel
            self.eventLoop = eventLoop
            self.handler = handler
        }

        func sendBody(_ buffer: ByteBuffer) { body += buffer.readableBytesView }
        func endBody() { ended = true }
        func consumed(_ bytes: Int) { consumed += bytes }
        func setClientWritable(_ writable: Bool) { clientWritable = writable }
        func cancel() { cancelled = true }

        /// Delivers an upstream event to the server (on the embedded loop, like the worker would).
        func deliver(_ event: UpstreamEvent) { handler(event) }

        func head(_ status: Int = 200, reason: String = "OK", _ headers: [(String, String)] = []) {
            deliver(.head(status: status, reason: reason, headers: headers.map { HeaderField($0.0, $0.1) }))
        }

        func body(_ text: String) { deliver(.body(ByteBuffer(string: text))) }
    }

    private let started = NIOLockedValueBox<[Transfer]>([])

    /// The transfers started so far, in order (any thread).
    var transfers: [Transfer] { started.withLockedValue { $0 } }

    func startTransfer(
        _ request: TransferRequest, on eventLoop: any EventLoop,
        handler: @escaping @Sendable (UpstreamEvent) -> Void
    ) -> any UpstreamTransfer {
        let transfer = Transfer(request: request, eventLoop: eventLoop, handler: handler)
        started.withLockedValue { $0.append(transfer) }
        return transfer
    }

    func startTunnel(
        _ request: TunnelRequest, on eventLoop: any EventLoop, handler: @escaping @Sendable (UpstreamEvent) -> Void
    ) -> any UpstreamTransfer {
        let plain = TransferRequest(
            url: request.url, method: "GET", headers: [], body: .none,
            connectTimeoutMilliseconds: request.connectTimeoutMilliseconds,
            idleTimeoutMilliseconds: request.idleTimeoutMilliseconds, tls: request.tls)
        let transfer = Transfer(request: plain, tunnel: request, eventLoop: eventLoop, handler: handler)
        started.withLockedValue { $0.append(transfer) }
        return transfer
    }
}

/// Counts the `read()` calls that reach the head of the pipeline: the read gate's decisions.
final class ReadCounter: ChannelOutboundHandler, @unchecked Sendable {
    typealias OutboundIn = Any
    private(set) var reads = 0
    /// Output half-closes asked for (EmbeddedChannel would close entirely; they stop here).
    private(set) var halfCloses = 0

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .output {
            halfCloses += 1
            promise?.succeed(())
            return
        }
        context.close(mode: mode, promise: promise)
    }
}

/// One client connection served by `HTTP1ConnectionHandler` over an `EmbeddedChannel`, in
/// front of a `FakeUpstream`. Time is the embedded loop's: `advance(by:)` drives the timers.
final class ConnectionHarness {
    static let conf = """
        listen 127.0.0.1:0
        upstream api http://127.0.0.1:3000
        cors {
            allow_origin https://app.example.com
            allow_methods GET POST PUT
            allow_headers X-Custom
        }
        route /api/ { upstream api }
        route /small/ { upstream api; max_body_size 10 }
        route /raw/ { upstream api; cors off }
        route /nows/ { upstream api; websocket off }
        """

    let channel = EmbeddedChannel()
    let upstream = FakeUpstream()
    let reads = ReadCounter()
    let server: ServerContext
    private var received: [UInt8] = []

    init(conf: String = ConnectionHarness.conf) throws {
        let loaded = ProxyConfig.load(text: conf, path: "test.conf", environment: [:])
        guard let configuration = loaded.configuration else {
            throw HarnessError("conf: \(loaded.diagnostics)")
        }
        var logger = Logger(label: "handler-test")
        logger.logLevel = .critical
        server = ServerContext(
            configuration: configuration, transport: upstream,
            metrics: ProxyMetrics(factory: NOOPMetricsHandler.instance), logger: logger, accessLog: quietAccessLog)
        try channel.pipeline.syncOperations.addHandler(reads)
        try channel.pipeline.syncOperations.addHandler(HTTP1ConnectionHandler(server: server, scheme: .http))
        channel.remoteAddress = try SocketAddress(ipAddress: "127.0.0.1", port: 50_000)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
    }

    /// The client sends `text`, then the read completes.
    func send(_ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
        channel.pipeline.fireChannelReadComplete()
    }

    func send(_ bytes: [UInt8]) throws {
        try channel.writeInbound(ByteBuffer(bytes: bytes))
        channel.pipeline.fireChannelReadComplete()
    }

    /// Runs pending tasks (flushes scheduled for "after this batch").
    func settle() { channel.embeddedEventLoop.run() }

    func advance(by amount: TimeAmount) { channel.embeddedEventLoop.advanceTime(by: amount) }

    /// Every byte written to the client so far.
    func outputBytes() throws -> [UInt8] {
        settle()
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            received += buffer.readableBytesView
        }
        return received
    }

    /// Every byte written to the client so far, as text.
    func output() throws -> String {
        String(decoding: try outputBytes(), as: UTF8.self)
    }

    /// The responses written so far, split at their status lines.
    func responses() throws -> [String] {
        let text = try output()
        return text.split(separator: "HTTP/1.1 ", omittingEmptySubsequences: true).map { "HTTP/1.1 " + $0 }
    }

    var isOpen: Bool { channel.isActive }
}

/// An access log that writes nothing (its level is above every request line), shared by the
/// in-process harnesses: one writer thread for the whole test run, not one per test.
let quietAccessLog = AccessLog(
    output: LogOutput(format: .text, level: .critical, fileDescriptor: -1), eventLoops: EmbeddedEventLoop())

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
