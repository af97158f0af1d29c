import Logging
import Metrics
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import ProxyConfig

@testable import ProxyServer

/// Collects what the server sends the client, frame by frame.
final class FrameCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTP2Frame
    private(set) var frames: [HTTP2Frame] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        frames.append(unwrapInboundIn(data))
    }
}

/// A server connection (`HTTP2Connection.configure` on an EmbeddedChannel, a fake upstream
/// behind it) and an HTTP/2 client (NIOHTTP2 on another EmbeddedChannel), their bytes passed
/// between them by `interact()`. Raw bytes can be sent to the server too, for what a
/// well-behaved client library would never send.
final class HTTP2Harness {
    let server = EmbeddedChannel()
    let client = EmbeddedChannel(loop: EmbeddedEventLoop())
    let upstream = FakeUpstream()
    let collector = FrameCollector()
    let context: ServerContext

    /// `client: false`: no NIOHTTP2 client; the test talks to `server` with a `RawHTTP2Client`.
    init(conf: String = ConnectionHarness.conf, client useClient: Bool = true) throws {
        let loaded = ProxyConfig.load(text: conf, path: "test.conf", environment: [:])
        guard let configuration = loaded.configuration else { throw HarnessError("conf: \(loaded.diagnostics)") }
        var logger = Logger(label: "h2-test")
        logger.logLevel = .critical
        context = ServerContext(
            configuration: configuration, transport: upstream,
            metrics: ProxyMetrics(factory: NOOPMetricsHandler.instance), logger: logger, accessLog: quietAccessLog)
        server.remoteAddress = try SocketAddress(ipAddress: "127.0.0.1", port: 50_000)
        try HTTP2Connection.configure(server, server: context)
        try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8443)).wait()
        guard useClient else { return }
        try client.pipeline.syncOperations.addHandler(
            NIOHTTP2Handler(
                mode: .client,
                initialSettings: [HTTP2Setting(parameter: .maxHeaderListSize, value: 1 << 20)]))
        try client.pipeline.syncOperations.addHandler(collector)
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8443)).wait()
        try interact()
    }

    /// Moves bytes both ways until neither side has anything more to say.
    func interact() throws {
        for _ in 0..<1000 {
            server.embeddedEventLoop.run()
            client.embeddedEventLoop.run()
            var moved = false
            while let bytes = try client.readOutbound(as: ByteBuffer.self) {
                if server.isActive { try server.writeInbound(bytes) }
                moved = true
            }
            if moved { server.pipeline.fireChannelReadComplete() }
            var back = false
            while let bytes = try server.readOutbound(as: ByteBuffer.self) {
                if client.isActive { try client.writeInbound(bytes) }
                back = true
            }
            if back { client.pipeline.fireChannelReadComplete() }
            if !moved && !back { return }
        }
        throw HarnessError("the two sides kept talking")
    }

    /// Sends bytes as they are, not through the client's HTTP/2 handler.
    func sendRaw(_ bytes: [UInt8]) throws {
        try server.writeInbound(ByteBuffer(bytes: bytes))
        server.pipeline.fireChannelReadComplete()
        server.embeddedEventLoop.run()
    }

    /// Opens a stream with a request; returns its id.
    @discardableResult
    func request(
        _ stream: Int, method: String = "GET", path: String, headers: [(String, String)] = [],
        body: String? = nil, endStream: Bool = true
    ) throws -> HTTP2StreamID {
        let id = HTTP2StreamID(stream)
        var fields = HPACKHeaders([
            (":method", method), (":scheme", "https"), (":authority", "proxy.example"), (":path", path),
        ])
        for (name, value) in headers { fields.add(name: name, value: value) }
        client.write(
            HTTP2Frame(streamID: id, payload: .headers(.init(headers: fields, endStream: body == nil && endStream))),
            promise: nil)
        if let body {
            client.write(
                HTTP2Frame(
                    streamID: id,
                    payload: .data(.init(data: .byteBuffer(ByteBuffer(string: body)), endStream: endStream))),
                promise: nil)
        }
        client.flush()
        try interact()
        return id
    }

    func send(_ payload: HTTP2Frame.FramePayload, on stream: Int) throws {
        client.write(HTTP2Frame(streamID: HTTP2StreamID(stream), payload: payload), promise: nil)
        client.flush()
        try interact()
    }

    /// What came back on one stream.
    struct Response {
        var headers: HPACKHeaders?
        var body = ""
        var ended = false
        var reset: HTTP2ErrorCode?
        var status: Int? { headers?.first(name: ":status").flatMap { Int($0) } }
        func value(_ name: String) -> String? { headers?.first(name: name) }
    }

    func response(_ stream: Int) -> Response {
        var response = Response()
        for frame in collector.frames where frame.streamID == HTTP2StreamID(stream) {
            switch frame.payload {
            case .headers(let h):
                if response.headers == nil { response.headers = h.headers }
                if h.endStream { response.ended = true }
            case .data(let d):
                if case .byteBuffer(let b) = d.data { response.body += String(buffer: b) }
                if d.endStream { response.ended = true }
            case .rstStream(let code):
                response.reset = code
            default:
                break
            }
        }
        return response
    }

    /// GOAWAY frames the server sent.
    var goAways: [(lastStreamID: HTTP2StreamID, errorCode: HTTP2ErrorCode)] {
        collector.frames.compactMap {
            if case .goAway(let last, let code, _) = $0.payload { return (last, code) }
            return nil
        }
    }
}
