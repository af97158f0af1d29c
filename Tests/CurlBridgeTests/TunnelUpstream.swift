import DemoWebSocket
import HeaderFields
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// The demo upstream's WebSocket endpoints (`DemoWebSocket`) in-process on 127.0.0.1:0, with
/// plain HTTP beside them: `/ws/refuse` (403 JSON, `Content-Length`), `/ws/refuse?chunked=1`
/// (the same, chunked), `/hello` (200 `hello`, keep-alive). Every request and handshake is
/// recorded; `?tag=T` registers its connection's close future under T.
final class WebSocketUpstream: Sendable {
    let channel: any Channel
    let record: UpstreamRecord
    var port: Int { channel.localAddress?.port ?? 0 }

    private init(channel: any Channel, record: UpstreamRecord) {
        self.channel = channel
        self.record = record
    }

    static func start() async throws -> WebSocketUpstream {
        let record = UpstreamRecord()
        let channel = try await ServerBootstrap(group: testGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                record.opened(channel)
                let upgrader = DemoWebSocket.upgrader(
                    removingOnUpgrade: "http",
                    endpoint: { head in WebSocketEndpoint.route(path: Self.path(head.uri)) },
                    sawHandshake: { channel, head in Self.note(head, channel: channel, record: record) })
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                    try channel.pipeline.syncOperations.addHandler(PlainHTTPHandler(record: record), name: "http")
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return WebSocketUpstream(channel: channel, record: record)
    }

    func url(_ path: String = "/") -> String { "http://127.0.0.1:\(port)\(path)" }

    func stop() async throws {
        try await channel.close()
    }

    static func path(_ uri: String) -> Substring {
        uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? Substring(uri)
    }

    static func query(_ uri: String, _ key: String) -> String? {
        guard let q = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return nil }
        for pair in q.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.count == 2 && kv[0] == key { return String(kv[1]) }
            if kv.count == 1 && kv[0] == key { return "" }
        }
        return nil
    }

    static func note(_ head: HTTPRequestHead, channel: any Channel, record: UpstreamRecord) {
        record.record(
            RecordedRequest(
                method: head.method.rawValue, uri: head.uri,
                headers: head.headers.map { HeaderField($0.name, $0.value) },
                bodyLength: 0, bodyHash: fnvOffset))
        record.sawHead(tag: query(head.uri, "tag"), channel: channel)
    }
}

private final class PlainHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let record: UpstreamRecord

    init(record: UpstreamRecord) { self.record = record }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        WebSocketUpstream.note(head, channel: context.channel, record: record)
        var headers = HTTPHeaders()
        let status: HTTPResponseStatus
        var body: [String] = []
        switch WebSocketUpstream.path(head.uri) {
        case "/ws/refuse":
            status = .forbidden
            headers.add(name: "Content-Type", value: "application/json")
            let text = DemoWebSocket.refusalBody
            if WebSocketUpstream.query(head.uri, "chunked") != nil {
                // No Content-Length on HTTP/1.1: NIO frames it chunked. Two pieces, two chunks.
                let half = text.index(text.startIndex, offsetBy: 10)
                body = [String(text[..<half]), String(text[half...])]
            } else {
                headers.add(name: "Content-Length", value: "\(text.utf8.count)")
                body = [text]
            }
        case "/hello":
            status = .ok
            headers.add(name: "Content-Length", value: "5")
            body = ["hello"]
        default:
            status = .notFound
            headers.add(name: "Content-Length", value: "0")
        }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        for piece in body {
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: piece)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // NIO reports a handshake it did not upgrade (`/ws/refuse`), then passes it on as plain HTTP.
        if error is NIOWebSocketUpgradeError { return }
        context.close(promise: nil)
    }
}

/// A TCP server that answers every connection with `script` once the request head arrived,
/// then closes (or, with `close: false`, keeps the connection open). For answers NIO's
/// HTTP server would not write: a body delimited by the close, broken chunking, a 1xx before the 101.
final class ScriptedUpstream: Sendable {
    let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    private init(channel: any Channel) { self.channel = channel }

    static func start(_ script: String, close: Bool = true) async throws -> ScriptedUpstream {
        let channel = try await ServerBootstrap(group: testGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ScriptHandler(script: script, close: close))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return ScriptedUpstream(channel: channel)
    }

    func url(_ path: String = "/") -> String { "http://127.0.0.1:\(port)\(path)" }

    func stop() async throws { try await channel.close() }
}

private final class ScriptHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let script: String
    let close: Bool
    var received = ByteBuffer()
    var answered = false

    init(script: String, close: Bool) {
        self.script = script
        self.close = close
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        received.writeBuffer(&bytes)
        guard !answered, received.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) != nil else { return }
        answered = true
        let channel = context.channel
        let write = context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: script)))
        if close { write.whenComplete { _ in channel.close(promise: nil) } }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
