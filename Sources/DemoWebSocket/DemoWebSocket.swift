import NIOCore
import NIOHTTP1
import NIOWebSocket

/// The demo upstream's WebSocket endpoints, after the demo's `/api` prefixes are stripped.
/// Shared by `demo-upstream` and the in-process upstream of the curl bridge's tests.
///
/// | path | after the handshake |
/// |---|---|
/// | `/ws/echo` | echoes every data frame as it came (opcode, FIN, payload: fragmented messages frame by frame), answers a ping with a pong, answers a Close with the same code and reason, then closes |
/// | `/ws/push/N` | sends N bytes as binary messages of 64 KiB (payload byte i is i % 251 over the whole stream) as fast as the socket takes them |
/// | `/ws/close/CODE` | sends a Close with CODE and reason `bye`; closes when the client answers it |
/// | `/ws/idle` | nothing at all (what arrives is read and dropped) |
/// | `/ws/refuse` | not upgraded: the HTTP handler answers `403` with a short JSON body |
///
/// Every 101 carries the first `Sec-WebSocket-Protocol` offered, and the
/// `Sec-WebSocket-Extensions` offer unchanged when it is the `x-test` extension.
package enum WebSocketEndpoint: Sendable, Equatable {
    case echo
    case push(bytes: UInt64)
    case close(code: UInt16)
    case idle
    case refuse

    /// The endpoint of `path` (the target before `?`); nil for a path outside `/ws/`, or a bad N or CODE.
    package static func route(path: Substring) -> WebSocketEndpoint? {
        switch path {
        case "/ws/echo": return .echo
        case "/ws/idle": return .idle
        case "/ws/refuse": return .refuse
        default: break
        }
        if path.hasPrefix("/ws/push/"), let bytes = UInt64(path.dropFirst("/ws/push/".count)) {
            return .push(bytes: bytes)
        }
        if path.hasPrefix("/ws/close/"), let code = UInt16(path.dropFirst("/ws/close/".count)),
            (1000...4999).contains(code)
        {
            return .close(code: code)
        }
        return nil
    }
}

package enum DemoWebSocket {
    /// Largest frame accepted from a client: a 4 MiB message fits in one frame.
    package static let maxFrameSize = 16 << 20
    /// Payload of each `/ws/push/N` message (the last one may be shorter).
    package static let pushMessageSize = 64 * 1024
    /// The JSON body of the `/ws/refuse` answer (status 403).
    package static let refusalBody = "{\"error\":\"websocket_refused\"}\n"

    /// An upgrader for the endpoints. `endpoint` maps a handshake to its endpoint (nil, or
    /// `.refuse`: not upgraded, the request goes on to the HTTP handler as plain HTTP);
    /// `sawHandshake` hears of every handshake that is upgraded, before the 101 is sent. On
    /// upgrade the HTTP handler named `httpHandlerName` leaves the pipeline.
    package static func upgrader(
        removingOnUpgrade httpHandlerName: String,
        endpoint: @escaping @Sendable (HTTPRequestHead) -> WebSocketEndpoint?,
        sawHandshake: @escaping @Sendable (Channel, HTTPRequestHead) -> Void
    ) -> NIOWebSocketServerUpgrader {
        NIOWebSocketServerUpgrader(
            maxFrameSize: maxFrameSize, automaticErrorHandling: true,
            shouldUpgrade: { channel, head in
                guard let target = endpoint(head), target != .refuse else {
                    return channel.eventLoop.makeSucceededFuture(nil)
                }
                sawHandshake(channel, head)
                return channel.eventLoop.makeSucceededFuture(negotiatedHeaders(head.headers))
            },
            upgradePipelineHandler: { channel, head in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    // Bytes after the handshake are held by NIO's upgrade handler until this is done.
                    sync.removeHandler(name: httpHandlerName, promise: nil)
                    switch endpoint(head) {
                    case .push(let bytes)?: try sync.addHandler(PushHandler(total: bytes))
                    case .close(let code)?: try sync.addHandler(CloseHandler(code: code))
                    case .idle?: try sync.addHandler(IdleHandler())
                    case .echo?, .refuse?, nil: try sync.addHandler(EchoHandler())
                    }
                }
            })
    }

    /// The headers a 101 adds to NIO's: the first offered subprotocol, and an `x-test` extension offer as sent.
    package static func negotiatedHeaders(_ request: HTTPHeaders) -> HTTPHeaders {
        var headers = HTTPHeaders()
        let protocols = request[canonicalForm: "sec-websocket-protocol"]
        if let first = protocols.first, !first.isEmpty {
            headers.add(name: "Sec-WebSocket-Protocol", value: String(first))
        }
        let extensions = request["sec-websocket-extensions"]
        if extensions.count == 1, let offer = extensions.first,
            offer.split(separator: ";").first?.trimmingCharacters(in: " \t") == "x-test"
        {
            headers.add(name: "Sec-WebSocket-Extensions", value: offer)
        }
        return headers
    }

    /// `length` bytes of the push pattern as they appear at `offset` of the stream.
    static func pattern(offset: UInt64, length: Int) -> ByteBuffer {
        patternSource.getSlice(at: Int(offset % 251), length: length)!
    }

    private static let patternSource: ByteBuffer = {
        var buffer = ByteBuffer()
        for i in 0..<(pushMessageSize + 251) { buffer.writeInteger(UInt8(i % 251)) }
        return buffer
    }()
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> Substring {
        var s = self
        while let first = s.first, set.contains(first) { s.removeFirst() }
        while let last = s.last, set.contains(last) { s.removeLast() }
        return s
    }
}

/// Stops reading while the channel is not writable, so a client that does not read what it is
/// sent stops being read too (memory stays bounded both ways). A client's half-close (the demo
/// allows them) closes the connection.
class BackpressuredHandler {
    private var readPending = false

    func closeOnInputClosed(context: ChannelHandlerContext, _ event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func holdRead(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            context.read()
        } else {
            readPending = true
        }
    }

    func writabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && readPending {
            readPending = false
            context.read()
        }
    }

    /// Answers a Close with the same payload (code and reason), then closes.
    func answerClose(context: ChannelHandlerContext, _ frame: WebSocketFrame) {
        let reply = WebSocketFrame(fin: true, opcode: .connectionClose, data: frame.unmaskedData)
        let channel = context.channel
        context.writeAndFlush(NIOAny(reply)).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// `/ws/echo`: every frame back as it came.
final class EchoHandler: BackpressuredHandler, ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame
    private var closing = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard !closing else { return }
        switch frame.opcode {
        case .text, .binary, .continuation:
            let echo = WebSocketFrame(fin: frame.fin, opcode: frame.opcode, data: frame.unmaskedData)
            context.write(wrapOutboundOut(echo), promise: nil)
        case .ping:
            context.write(
                wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            closing = true
            answerClose(context: context, frame)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        closeOnInputClosed(context: context, event)
    }

    func read(context: ChannelHandlerContext) {
        holdRead(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writabilityChanged(context: context)
        context.fireChannelWritabilityChanged()
    }
}

/// `/ws/push/N`: N bytes of binary messages, written while the socket takes them.
final class PushHandler: BackpressuredHandler, ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame
    private let total: UInt64
    private var sent: UInt64 = 0
    private var pumping = false

    init(total: UInt64) { self.total = total }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { pump(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        pump(context: context)
        context.fireChannelActive()
    }

    private func pump(context: ChannelHandlerContext) {
        guard !pumping else { return }  // a flush can report writability from inside the loop
        pumping = true
        defer { pumping = false }
        while sent < total && context.channel.isWritable {
            let length = Int(min(UInt64(DemoWebSocket.pushMessageSize), total - sent))
            let frame = WebSocketFrame(
                fin: true, opcode: .binary, data: DemoWebSocket.pattern(offset: sent, length: length))
            sent += UInt64(length)
            context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if frame.opcode == .connectionClose { answerClose(context: context, frame) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        closeOnInputClosed(context: context, event)
    }

    func read(context: ChannelHandlerContext) {
        holdRead(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        pump(context: context)
        writabilityChanged(context: context)
        context.fireChannelWritabilityChanged()
    }
}

/// `/ws/close/CODE`: a Close frame at once; the connection closes when the client answers it.
final class CloseHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame
    private let code: UInt16

    init(code: UInt16) { self.code = code }

    func handlerAdded(context: ChannelHandlerContext) {
        var payload = context.channel.allocator.buffer(capacity: 5)
        payload.writeInteger(code)
        payload.writeString("bye")
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)))
            .whenComplete { _ in }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if unwrapInboundIn(data).opcode == .connectionClose { context.close(promise: nil) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { context.close(promise: nil) }
    }
}

/// `/ws/idle`: the handshake, then nothing.
final class IdleHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { context.close(promise: nil) }
    }
}
