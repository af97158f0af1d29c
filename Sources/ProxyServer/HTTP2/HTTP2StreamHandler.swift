import CORSPolicy
import HeaderFields
import NIOCore
import NIOHPACK
import NIOHTTP2

/// One HTTP/2 stream: its request goes to an `ExchangeDriver`, like an HTTP/1.1 request does,
/// and the driver's response comes back as HEADERS and DATA frames. Everything about CORS,
/// routes, limits and the upstream is the driver's; this is framing only.
///
/// Backpressure is HTTP/2 flow control both ways. Request: `read()` is held back while the
/// driver does not want the body, so DATA frames stay queued in the stream channel and no
/// WINDOW_UPDATE is sent until the upstream consumed what it has. Response: the stream
/// channel is unwritable while the peer's window is spent, and the driver pauses the
/// upstream transfer until it is writable again.
final class HTTP2StreamHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    /// The largest request header list (RFC 9113 size: names, values and 32 bytes a field)
    /// served; a larger one gets 431, like an HTTP/1.1 head over 32 KiB.
    static let maxHeaderListSize = 32 * 1024

    private let server: ServerContext
    let scheme: Scheme
    private var driver: ExchangeDriver<HTTP2StreamHandler>!
    private var context: ChannelHandlerContext?
    private(set) var clientAddress = "unknown"
    private var readPending = false
    private var flushScheduled = false
    /// HEADERS arrived (a second HEADERS block is trailers).
    private var sawHead = false
    /// The request's first frames, held until the end of the read that brought them.
    private var held: [HTTP2Frame.FramePayload]?
    /// The response's last frame carried END_STREAM.
    private var ended = false

    /// The stream's connection: whether it hit a protocol error (checked before a held request
    /// starts). Nil for a stream not made by `HTTP2Connection`.
    private let connection: NIOLoopBound<HTTP2ConnectionManager>?

    init(server: ServerContext, scheme: Scheme, connection: NIOLoopBound<HTTP2ConnectionManager>? = nil) {
        self.server = server
        self.scheme = scheme
        self.connection = connection
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let address = context.channel.parent?.remoteAddress?.ipAddress { clientAddress = address }
        driver = ExchangeDriver(server: server, transport: self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        held = nil
        driver?.clientClosed()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = unwrapInboundIn(data)
        if case .rstStream = payload {
            // The client cancelled the stream: what was started for it is cancelled (the
            // upstream connection is closed, not pooled), and a request still held back
            // (below) never starts.
            held = nil
            driver.clientClosed()
            return
        }
        if held != nil {
            held?.append(payload)
            return
        }
        if case .headers = payload, !sawHead {
            // The request starts once everything read with it is processed, not now: NIOHTTP2
            // handles a whole read's frames before the loop runs this task, so a client that
            // sends HEADERS and RST_STREAM together (HTTP/2 rapid reset) starts no upstream
            // request at all.
            held = [payload]
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.execute { bound.value.releaseHeld() }
            return
        }
        process(payload)
    }

    private func releaseHeld() {
        guard let held, let context else { return }
        self.held = nil
        guard context.channel.isActive, !driver.isClosed, connection?.value.failed != true else { return }
        for payload in held { process(payload) }
        context.flush()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    private func process(_ payload: HTTP2Frame.FramePayload) {
        switch payload {
        case .headers(let headers):
            if sawHead {
                // Trailers: dropped (they are hop-by-hop for the proxy), but they may end the stream.
                if headers.endStream { endOfRequest() }
                return
            }
            sawHead = true
            receivedHead(headers)
        case .data(let data):
            guard case .byteBuffer(let buffer) = data.data else { return }
            if driver.isDiscardingInput {
                driver.discarded(buffer.readableBytes)
            } else if buffer.readableBytes > 0, driver.isReceivingRequestBody {
                driver.receivedBody(buffer)
            }
            if data.endStream { endOfRequest() }
        case .rstStream, .priority, .settings, .pushPromise, .ping, .goAway, .windowUpdate, .alternativeService,
            .origin:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        held = nil
        driver.clientClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A stream error (malformed headers, a content-length that disagrees with the DATA):
        // NIOHTTP2 has reset the stream; what was started for it is cancelled.
        driver.clientClosed()
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        driver.writabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            driver.drain()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func read(context: ChannelHandlerContext) {
        if driver.shouldRead {
            readPending = false
            context.read()
        } else {
            readPending = true
        }
    }

    // MARK: The request

    private func receivedHead(_ frame: HTTP2Frame.FramePayload.Headers) {
        var method: String?
        var path: String?
        var authority: String?
        var fields: [HeaderField] = []
        fields.reserveCapacity(frame.headers.count)
        var cookies: [String] = []
        var listSize = 0
        var contentLength: Int64?
        var hasHost = false
        for (name, value, _) in frame.headers {
            listSize += name.utf8.count + value.utf8.count + 32
            if name.utf8.first == UInt8(ascii: ":") {
                switch name {
                case ":method": method = value
                case ":path": path = value
                case ":authority": authority = value
                default: break  // :scheme is the listener's
                }
                continue
            }
            switch name {
            case "cookie":
                // HTTP/2 may split Cookie into several fields; HTTP/1.1 upstreams get one (RFC 9113 8.2.3).
                cookies.append(value)
                continue
            case "host":
                hasHost = true
            case "content-length":
                contentLength = Int64(value)
            default:
                break
            }
            fields.append(HeaderField(name, value))
        }
        if !cookies.isEmpty { fields.append(HeaderField("cookie", cookies.joined(separator: "; "))) }
        if !hasHost, let authority { fields.insert(HeaderField("host", authority), at: 0) }

        guard let method, let path, path.utf8.first == UInt8(ascii: "/") else {
            // CONNECT, or an asterisk or absolute form: not served by a reverse proxy.
            driver.receivedMalformed(.targetNotOriginForm, salvaged: nil)
            return
        }
        let body: BodyFraming =
            frame.endStream ? .none : contentLength.map { .length($0) } ?? .chunked
        // keepAlive: after its response the stream is simply done, so "keep-alive" is the
        // answer that adds nothing to it (and lets allowed preflights come from the cache).
        let head = RequestHead(
            method: method, target: path, versionMinor: 1, headers: fields, body: body, keepAlive: true,
            expectContinue: false, isUpgrade: false)
        if listSize > Self.maxHeaderListSize {
            driver.receivedMalformed(.headTooLarge, salvaged: head)
            return
        }
        driver.receivedHead(head)
    }

    private func endOfRequest() {
        guard driver.isReceivingRequestBody else { return }
        driver.receivedEnd()
    }

    // MARK: Writing

    private func write(_ payload: HTTP2Frame.FramePayload) {
        context?.write(wrapOutboundOut(payload), promise: nil)
    }

    private func flushSoon() {
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let handler = bound.value
            handler.flushScheduled = false
            handler.context?.flush()
        }
    }

    /// Response headers as HPACK wants them: `:status` first, names lowercase, no
    /// connection-specific field.
    private static func hpack(status: Int, headers: [HeaderField], extra: (String, String)? = nil) -> HPACKHeaders {
        var out = HPACKHeaders()
        out.reserveCapacity(headers.count + 2)
        out.add(name: ":status", value: String(status))
        // Hop-by-hop fields are HTTP/1.1's (the rewriting's list): HTTP/2 forbids them.
        for header in headers where HeaderRewriting.kind(of: header.name) != .hopByHop {
            out.add(name: h2Name(header.name), value: header.value)
        }
        if let extra { out.add(name: extra.0, value: extra.1) }
        return out
    }

    /// `name` in lowercase without a new string where it can: the proxy's own CORS names as
    /// literals (every allowed preflight and CORS response carries several, all over 15 bytes,
    /// so `lowercased()` would allocate each), and names already lowercase as they are.
    private static func h2Name(_ name: String) -> String {
        switch name {
        case CORSHeader.allowOrigin: return "access-control-allow-origin"
        case CORSHeader.allowCredentials: return "access-control-allow-credentials"
        case CORSHeader.allowMethods: return "access-control-allow-methods"
        case CORSHeader.allowHeaders: return "access-control-allow-headers"
        case CORSHeader.exposeHeaders: return "access-control-expose-headers"
        case CORSHeader.maxAge: return "access-control-max-age"
        case CORSHeader.allowPrivateNetwork: return "access-control-allow-private-network"
        case CORSHeader.vary: return "vary"
        default:
            return name.utf8.contains { $0 &- UInt8(ascii: "A") < 26 } ? name.lowercased() : name
        }
    }

    /// After a complete response: the stream is done. A request body still arriving is
    /// refused without error (RFC 9113 8.1: RST_STREAM NO_ERROR after a complete response).
    private func finishStream(after: ExchangeStateMachine.After) {
        ended = true
        if after == .lingerThenClose {
            write(.rstStream(.noError))
            context?.flush()
            driver.clientClosed()
        } else {
            flushSoon()
        }
    }
}

extension HTTP2StreamHandler: ExchangeTransport {
    var eventLoop: any EventLoop { context!.eventLoop }
    var allocator: ByteBufferAllocator { context!.channel.allocator }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func writeLocalResponse(
        status: Int, headers: [HeaderField], body: String?, omitBody: Bool, after: ExchangeStateMachine.After
    ) -> (bytes: Int, rendering: ByteBuffer?) {
        var bytes = 0
        let length: (String, String)? =
            if let body { ("content-length", String(body.utf8.count)) } else if status != 204 {
                ("content-length", "0")
            } else { nil }
        var fields = Self.hpack(status: status, headers: headers, extra: length)
        if body != nil { fields.add(name: "content-type", value: "text/plain; charset=utf-8") }
        let hasBody = body != nil && !omitBody
        write(.headers(.init(headers: fields, endStream: !hasBody)))
        if let body, hasBody {
            var buffer = allocator.buffer(capacity: body.utf8.count)
            buffer.writeString(body)
            bytes += buffer.readableBytes
            write(.data(.init(data: .byteBuffer(buffer), endStream: true)))
        }
        finishStream(after: after)
        return (bytes, nil)
    }

    func writeCachedResponse(_ entry: PreflightResponseCache.Entry) -> Int {
        // The HTTP/1.1 rendering cannot be replayed here; the decision it was made from can.
        guard case .preflight(let status, let headers) = entry.decision else { return 0 }
        let length: (String, String)? = status == 204 ? nil : ("content-length", "0")
        write(.headers(.init(headers: Self.hpack(status: status, headers: headers, extra: length), endStream: true)))
        finishStream(after: .keepAlive)
        return 0
    }

    func writeContinue() {}

    func writeHead(
        status: Int, reason: String, headers: [HeaderField], framing: ExchangeStateMachine.ResponseFraming,
        close: Bool
    ) -> Int {
        let length: (String, String)? = if case .length(let n) = framing { ("content-length", String(n)) } else { nil }
        let endStream = framing == .none
        write(
            .headers(.init(headers: Self.hpack(status: status, headers: headers, extra: length), endStream: endStream)))
        if endStream { ended = true }
        flushSoon()
        return 0
    }

    func writeBody(_ part: ByteBuffer) {
        guard part.readableBytes > 0, !ended else { return }
        write(.data(.init(data: .byteBuffer(part))))
        flushSoon()
    }

    func endResponse(after: ExchangeStateMachine.After) {
        if !ended {
            write(.data(.init(data: .byteBuffer(allocator.buffer(capacity: 0)), endStream: true)))
        }
        finishStream(after: after)
    }

    func abort() {
        // An upstream failure after the head: only this stream is reset.
        write(.rstStream(.internalError))
        context?.flush()
        context?.close(promise: nil)
    }

    func close() {
        context?.close(promise: nil)
    }

    func startLingering() {
        // The stream was reset with NO_ERROR when its response ended: nothing is left to discard.
        driver.clientClosed()
    }

    func readIfWanted() {
        if readPending && driver.shouldRead {
            readPending = false
            context?.read()
        }
    }
}
