import CORSPolicy
import HeaderFields
import NIOCore
import NIOExtras

/// HTTP/1.1 framing for one browser-facing connection: the strict parser, pipelining, the
/// read gate, and the HTTP/1.1 serialisation of responses. What the requests mean (routes,
/// CORS, the upstream) is the `ExchangeDriver`'s, whose actions arrive here through
/// `ExchangeTransport`.
///
/// Reads are pulled, not pushed: `read(context:)` is held back while the driver does not
/// want the request body (the upstream has 64 KiB of it unconsumed), or while a response is
/// in progress and the next pipelined request is already buffered, so answers go out in
/// order and the input buffer stays bounded.
final class HTTP1ConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let server: ServerContext
    let scheme: Scheme
    private var driver: ExchangeDriver<HTTP1ConnectionHandler>!
    private var context: ChannelHandlerContext?
    private var input = ByteBuffer()
    private var parser = HTTPRequestParser()
    private(set) var clientAddress = "unknown"
    /// `read()` was asked for while the gate was shut.
    private var readPending = false
    private var flushScheduled = false
    /// Inside `channelRead`: writes are flushed by `channelReadComplete`.
    private var inReadBurst = false
    private var inParseLoop = false
    private var wroteSinceFlush = false
    /// How the response being written is framed.
    private var framing = ExchangeStateMachine.ResponseFraming.none

    init(server: ServerContext, scheme: Scheme) {
        self.server = server
        self.scheme = scheme
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        input = context.channel.allocator.buffer(capacity: 0)
        if let address = context.channel.remoteAddress?.ipAddress { clientAddress = address }
        driver = ExchangeDriver(server: server, transport: self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        driver?.clientClosed()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if let address = context.channel.remoteAddress?.ipAddress { clientAddress = address }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if driver.isDiscardingInput {
            driver.discarded(bytes.readableBytes)
            return
        }
        if driver.isTunnelling && input.readableBytes == 0 {
            // WebSocket: the client's bytes go upstream as they are.
            driver.receivedTunnelData(bytes)
            return
        }
        if input.readableBytes == 0 {
            input = bytes
        } else {
            input.writeBuffer(&bytes)
        }
        inReadBurst = true
        processInput()
        inReadBurst = false
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        wroteSinceFlush = false
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        driver.clientClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Connection resets and the like: the inactive path cleans up.
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
        if event is DrainTimeoutEvent {
            driver.goingAway()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: The read gate

    func read(context: ChannelHandlerContext) {
        if canRead {
            readPending = false
            context.read()
        } else {
            readPending = true
        }
    }

    private var canRead: Bool {
        guard driver.shouldRead else { return false }
        // A pipelined request waits in `input` until the current response is done.
        if !driver.acceptsNewRequest && parser.isAtRequestBoundary && input.readableBytes > 0 { return false }
        return input.readableBytes <= HTTPRequestParser.maxHeadSize + 4096
    }

    // MARK: Parsing

    private func processInput() {
        guard !inParseLoop, context != nil else { return }
        inParseLoop = true
        defer { inParseLoop = false }
        while !driver.isClosed {
            if driver.isTunnelling {
                // Bytes the client sent right behind its handshake belong to the tunnel.
                if input.readableBytes > 0 {
                    let early = input
                    input.clear()
                    driver.receivedTunnelData(early)
                }
                break
            }
            if driver.isDiscardingInput {
                let count = input.readableBytes
                input.clear()
                if count > 0 { driver.discarded(count) }
                break
            }
            if !driver.acceptsNewRequest && parser.isAtRequestBoundary { break }
            let part: HTTPRequestParser.Part?
            do {
                part = try parser.next(&input)
            } catch {
                let salvaged = driver.acceptsNewRequest ? HTTPRequestParser.salvageHead(input) : nil
                driver.receivedMalformed(error, salvaged: salvaged)
                continue
            }
            guard let part else { break }
            switch part {
            case .head(let head): driver.receivedHead(head)
            case .body(let body): driver.receivedBody(body)
            case .end: driver.receivedEnd()
            }
        }
        if driver.acceptsNewRequest && input.readableBytes > 0 { driver.headStarted() }
        if input.readableBytes == 0 {
            input.clear()
        } else if input.readerIndex > 64 * 1024 {
            input.discardReadBytes()
        }
        if !inReadBurst && wroteSinceFlush {
            wroteSinceFlush = false
            context?.flush()
        }
        releaseReadIfPossible()
    }

    private func releaseReadIfPossible() {
        if readPending && canRead {
            readPending = false
            context?.read()
        }
    }

    // MARK: Writing

    private func write(_ buffer: ByteBuffer) {
        wroteSinceFlush = true
        context?.write(wrapOutboundOut(buffer), promise: nil)
    }

    /// Flushes once after the current batch of upstream events, so a small response's head,
    /// body and end leave in one `writev` instead of one syscall each.
    private func flushSoon() {
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let handler = bound.value
            handler.flushScheduled = false
            handler.wroteSinceFlush = false
            handler.context?.flush()
        }
    }

    /// Writes and flushes `buffer`, then continues as `after` says (the driver's machine has
    /// already moved on: only the connection's side is left to do).
    private func send(_ buffer: ByteBuffer, after: ExchangeStateMachine.After) {
        guard let context else { return }
        switch after {
        case .keepAlive:
            write(buffer)
            if !inParseLoop { flushSoon() }
        case .close:
            wroteSinceFlush = false
            context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { [channel = context.channel] _ in
                channel.close(promise: nil)
            }
        case .lingerThenClose:
            wroteSinceFlush = false
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { result in
                let handler = bound.value
                switch result {
                case .success:
                    // Reported from a later turn: the driver is never re-entered from its own call.
                    handler.context?.eventLoop.execute { bound.value.driver.responseFlushed() }
                case .failure:
                    handler.context?.close(promise: nil)
                }
            }
        }
    }
}

extension HTTP1ConnectionHandler: ExchangeTransport {
    var eventLoop: any EventLoop { context!.eventLoop }
    var allocator: ByteBufferAllocator { context!.channel.allocator }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func writeLocalResponse(
        status: Int, headers: [HeaderField], body: String?, omitBody: Bool, after: ExchangeStateMachine.After
    ) -> (bytes: Int, rendering: ByteBuffer?) {
        var buffer = allocator.buffer(capacity: 512)
        HTTP1Serialization.writeStatusLine(into: &buffer, status: status)
        var hasLength = false
        for field in headers {
            HTTP1Serialization.writeHeader(into: &buffer, field.name, field.value)
            if field.name == "Content-Length" { hasLength = true }
        }
        if let body {
            buffer.writeStaticString("Content-Type: text/plain; charset=utf-8\r\nContent-Length: ")
            buffer.writeString(String(body.utf8.count))
            buffer.writeStaticString("\r\n")
        } else if status != 204 && !hasLength {
            // 204 carries no Content-Length; every other answer says its empty body is empty.
            buffer.writeStaticString("Content-Length: 0\r\n")
        }
        if after != .keepAlive { buffer.writeStaticString("Connection: close\r\n") }
        buffer.writeStaticString("\r\n")
        if let body, !omitBody { buffer.writeString(body) }
        let bytes = buffer.readableBytes
        send(buffer, after: after)
        return (bytes, after == .keepAlive ? buffer : nil)
    }

    func writeCachedResponse(_ entry: PreflightResponseCache.Entry) -> Int {
        guard let response = entry.response else {
            // Stored by an HTTP/2 stream: rendered from its decision (the decision is what it saves).
            guard case .preflight(let status, let headers) = entry.decision else { return 0 }
            return writeLocalResponse(status: status, headers: headers, body: nil, omitBody: false, after: .keepAlive)
                .bytes
        }
        write(response)
        if !inParseLoop { flushSoon() }
        return response.readableBytes
    }

    func writeContinue() {
        var buffer = allocator.buffer(capacity: 32)
        buffer.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
        wroteSinceFlush = false
        context?.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    func writeHead(
        status: Int, reason: String, headers: [HeaderField], framing: ExchangeStateMachine.ResponseFraming,
        close: Bool
    ) -> Int {
        self.framing = framing
        var buffer = allocator.buffer(capacity: 512)
        HTTP1Serialization.writeStatusLine(into: &buffer, status: status, reason: reason)
        for header in headers { HTTP1Serialization.writeHeader(into: &buffer, header.name, header.value) }
        switch framing {
        case .length(let n):
            buffer.writeStaticString("Content-Length: ")
            buffer.writeString(String(n))
            buffer.writeStaticString("\r\n")
        case .chunked:
            buffer.writeStaticString("Transfer-Encoding: chunked\r\n")
        case .none, .closeDelimited:
            break
        }
        if close { buffer.writeStaticString("Connection: close\r\n") }
        buffer.writeStaticString("\r\n")
        write(buffer)
        flushSoon()
        return buffer.readableBytes
    }

    func writeBody(_ part: ByteBuffer) {
        let count = part.readableBytes
        guard count > 0 else { return }
        if framing == .chunked {
            var size = allocator.buffer(capacity: 12)
            size.writeString(String(count, radix: 16))
            size.writeStaticString("\r\n")
            write(size)
            write(part)
            var crlf = allocator.buffer(capacity: 2)
            crlf.writeStaticString("\r\n")
            write(crlf)
        } else {
            write(part)
        }
        flushSoon()
    }

    func endResponse(after: ExchangeStateMachine.After) {
        var end = allocator.buffer(capacity: framing == .chunked ? 5 : 0)
        if framing == .chunked { end.writeStaticString("0\r\n\r\n") }
        framing = .none
        switch after {
        case .keepAlive:
            if end.readableBytes > 0 { write(end) }
            wroteSinceFlush = false
            context?.flush()
        case .close, .lingerThenClose:
            send(end, after: after)
        }
    }

    func abort() {
        context?.close(promise: nil)
    }

    func close() {
        context?.close(promise: nil)
    }

    func startLingering() {
        // FIN after the answer; what the client still sends is read and dropped until the driver closes.
        context?.close(mode: .output, promise: nil)
        releaseReadIfPossible()
    }

    func readIfWanted() {
        if !inParseLoop && (driver.acceptsNewRequest || driver.isTunnelling) && input.readableBytes > 0 {
            processInput()
        } else {
            releaseReadIfPossible()
        }
    }
}
