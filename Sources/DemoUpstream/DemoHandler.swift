import DemoWebSocket
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

struct DemoOptions: Sendable {
    /// Keep the last 1000 requests for `GET /__requests`.
    var record = true
    /// One line per request on stderr.
    var verbose = false
}

/// State shared by every connection.
final class DemoShared: Sendable {
    let options: DemoOptions
    let log = RequestLog(capacity: 1000)
    let stats = ServerStats()

    init(options: DemoOptions) {
        self.options = options
    }

    /// Counts and records a request (the head of a plain one, or a WebSocket handshake).
    func noteRequest(connection: Int, head: HTTPRequestHead) {
        stats.requests.wrappingAdd(1, ordering: .relaxed)
        if options.record { log.record(connection: connection, head: head) }
    }
}

/// One per connection, after NIO's HTTP/1.1 server pipeline (which serialises pipelined
/// requests: the next head is delivered only after this handler wrote the previous `.end`).
final class DemoHandler: ChannelInboundHandler, RemovableChannelHandler {
    /// Its name in the pipeline: a WebSocket upgrade takes it out.
    static let name = "demo"
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Bodies larger than this for `/hash-of/N` are hashed on the thread pool, not the event loop.
    private static let inlineHashLimit: UInt64 = 8 << 20

    private struct Request {
        var head: HTTPRequestHead
        var endpoint: Endpoint
        var requestID: Int
        var bodyBytes: UInt64 = 0
        var hasher = FNV1a64()

        var isHEAD: Bool { self.head.method == .HEAD }
    }

    /// A `/bytes/N` body being written.
    private struct ByteStream {
        var sent: UInt64
        let total: UInt64
    }

    private let shared: DemoShared
    private let connectionID: Int

    /// The request whose head arrived and whose `.end` did not yet.
    private var request: Request?
    /// Between the request's `.end` and the response's `.end`.
    private var responding = false
    /// Whether the connection stays open after the response in progress.
    private var keepAlive = true
    private var stream: ByteStream?
    private var pumpScheduled = false
    private var pumping = false
    private var scheduled: Scheduled<Void>?
    private var inputClosed = false
    private var active = true
    private var countedGeneration = -1

    init(shared: DemoShared, connectionID: Int) {
        self.shared = shared
        self.connectionID = connectionID
    }

    // MARK: - Inbound events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.receivedHead(context: context, head)
        case .body(let buffer):
            guard self.request != nil else { return }
            self.request!.bodyBytes &+= UInt64(buffer.readableBytes)
            if self.request!.endpoint.hashesBody {
                self.request!.hasher.update(buffer)
            }
        case .end:
            guard let request = self.request else { return }
            self.request = nil
            self.responding = true
            self.keepAlive = request.head.isKeepAlive && !self.inputClosed
            self.dispatch(context: context, request)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if self.stream != nil, context.channel.isWritable {
            self.pump(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            self.inputClosed = true
            // Mid-response: close once the response is complete (see `complete`).
            if !self.responding {
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.active = false
        self.stream = nil
        self.scheduled?.cancel()
        self.scheduled = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A handshake NIO did not upgrade (`/ws/refuse`, a bad one) comes next, as plain HTTP.
        if error is NIOWebSocketUpgradeError { return }
        if self.shared.options.verbose {
            Console.err("conn=\(self.connectionID) error: \(error)")
        }
        context.close(promise: nil)
    }

    // MARK: - Request

    private func receivedHead(context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        let endpoint = Endpoint.route(method: head.method, target: head.uri)
        let shared = self.shared
        if !endpoint.isControl {
            let stats = shared.stats
            let generation = stats.generation.load(ordering: .relaxed)
            if generation != self.countedGeneration {
                self.countedGeneration = generation
                stats.connectionsWithRequests.wrappingAdd(1, ordering: .relaxed)
            }
            shared.noteRequest(connection: self.connectionID, head: head)
        }
        if shared.options.verbose {
            Console.err("conn=\(self.connectionID) \(head.method.rawValue) \(head.uri) \(head.version)")
        }
        self.request = Request(head: head, endpoint: endpoint, requestID: shared.stats.nextRequestID())

        if head.version.major == 1, head.version.minor >= 1,
            let expect = head.headers.first(name: "expect"),
            expect.lowercased() == "100-continue"
        {
            let interim = HTTPResponseHead(version: head.version, status: .continue)
            context.writeAndFlush(self.wrapOutboundOut(.head(interim)), promise: nil)
        }
    }

    private func dispatch(context: ChannelHandlerContext, _ request: Request) {
        switch request.endpoint {
        case .healthz:
            self.respond(context: context, request, Fixed.healthz)
        case .itemsList:
            self.respond(context: context, request, Fixed.items)
        case .headersWithCORS:
            self.respond(context: context, request, Fixed.headersWithCORS)
        case .varyStar:
            self.respond(context: context, request, Fixed.varyStar)
        case .gzip:
            self.respond(context: context, request, Fixed.gzip)
        case .setCookie:
            self.respond(context: context, request, Fixed.setCookie)
        case .timingAllowed:
            self.respond(context: context, request, Fixed.timingAllowed)

        case .itemWrite(let id):
            var body = context.channel.allocator.buffer(capacity: 128)
            body.writeStaticString("{\"method\":")
            body.writeJSONString(request.head.method.rawValue)
            body.writeStaticString(",\"path\":")
            body.writeJSONString(Endpoint.path(of: request.head.uri))
            body.writeStaticString(",\"id\":")
            body.writeJSONStringOrNull(id.map(String.init))
            body.writeStaticString("}\n")
            self.respondJSON(context: context, request, body: body)

        case .me:
            let cookies = request.head.headers["Cookie"]
            var body = context.channel.allocator.buffer(capacity: 64)
            body.writeStaticString("{\"user\":\"demo\",\"cookie\":")
            body.writeJSONStringOrNull(cookies.isEmpty ? nil : cookies.joined(separator: "; "))
            body.writeStaticString("}\n")
            self.respondJSON(context: context, request, body: body)

        case .echo:
            self.respondJSON(context: context, request, body: self.renderEcho(context: context, request))

        case .upload:
            var body = context.channel.allocator.buffer(capacity: 64)
            body.writeStaticString("{\"bytes\":")
            body.writeJSONNumber(request.bodyBytes)
            body.writeStaticString(",\"fnv1a64\":")
            body.writeJSONString(request.hasher.hex)
            body.writeStaticString("}\n")
            self.respondJSON(context: context, request, body: body)

        case .bytes(let count, let chunked):
            self.startBytes(context: context, request, count: count, chunked: chunked)

        case .hashOf(let count):
            self.hashOf(context: context, request, count: count)

        case .status(let code):
            self.status(context: context, request, code: code)

        case .slow(let ms):
            self.scheduled = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(ms)) {
                self.scheduled = nil
                guard self.active else { return }
                var body = context.channel.allocator.buffer(capacity: 32)
                body.writeStaticString("{\"slept_ms\":")
                body.writeJSONNumber(ms)
                body.writeStaticString("}\n")
                self.respondJSON(context: context, request, body: body)
            }

        case .slowBody(let ms):
            self.slowBody(context: context, request, milliseconds: ms)

        case .resetMidBody:
            self.resetMidBody(context: context, request)

        case .webSocketRefused:
            var body = context.channel.allocator.buffer(capacity: 32)
            body.writeString(DemoWebSocket.refusalBody)
            self.respondJSON(context: context, request, status: .forbidden, body: body)

        case .closeBeforeHead:
            context.close(promise: nil)

        case .requestLog:
            self.respondJSON(
                context: context, request,
                body: self.shared.log.renderJSON(allocator: context.channel.allocator))
        case .reset:
            self.shared.log.clear()
            self.shared.stats.reset()
            self.respond(context: context, request, Fixed.reset)
        case .stats:
            self.respondJSON(
                context: context, request,
                body: self.shared.stats.renderJSON(allocator: context.channel.allocator))

        case .badRequest(let message):
            var body = context.channel.allocator.buffer(capacity: 96)
            body.writeStaticString("{\"error\":\"bad_request\",\"message\":")
            body.writeJSONString(message)
            body.writeStaticString("}\n")
            self.respondJSON(context: context, request, status: .badRequest, body: body)

        case .notFound:
            var body = context.channel.allocator.buffer(capacity: 96)
            body.writeStaticString("{\"error\":\"not_found\",\"method\":")
            body.writeJSONString(request.head.method.rawValue)
            body.writeStaticString(",\"path\":")
            body.writeJSONString(Endpoint.path(of: request.head.uri))
            body.writeStaticString("}\n")
            self.respondJSON(context: context, request, status: .notFound, body: body)
        }
    }

    // MARK: - Endpoints with behaviour

    /// `{"method","target","version","headers":[[n,v],…],"body_length","body_fnv1a64","connection","request_id"}`
    private func renderEcho(context: ChannelHandlerContext, _ request: Request) -> ByteBuffer {
        let head = request.head
        var body = context.channel.allocator.buffer(capacity: 512)
        body.writeStaticString("{\"method\":")
        body.writeJSONString(head.method.rawValue)
        body.writeStaticString(",\"target\":")
        body.writeJSONString(head.uri)
        body.writeStaticString(",\"version\":")
        body.writeJSONString(head.version.description)
        body.writeStaticString(",\"headers\":")
        body.writeJSONHeaderList(head.headers)
        body.writeStaticString(",\"body_length\":")
        body.writeJSONNumber(request.bodyBytes)
        body.writeStaticString(",\"body_fnv1a64\":")
        body.writeJSONString(request.hasher.hex)
        body.writeStaticString(",\"connection\":")
        body.writeJSONNumber(self.connectionID)
        body.writeStaticString(",\"request_id\":")
        body.writeJSONNumber(request.requestID)
        body.writeStaticString("}\n")
        return body
    }

    private func startBytes(context: ChannelHandlerContext, _ request: Request, count: UInt64, chunked: Bool) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/octet-stream")
        if !chunked {
            headers.add(name: "Content-Length", value: String(count))
        } else if request.head.version.major == 1 && request.head.version.minor == 0 {
            // HTTP/1.0 has no chunked coding: the body is delimited by the close.
            self.keepAlive = false
        }
        // HTTP/1.1 without Content-Length: NIO adds `Transfer-Encoding: chunked`.
        self.writeHead(context: context, request, status: .ok, headers: headers)
        if request.isHEAD || count == 0 {
            self.complete(context: context)
            return
        }
        self.stream = ByteStream(sent: 0, total: count)
        self.pump(context: context)
    }

    /// Writes 64 KiB slices of the pattern while the channel is writable; resumes on
    /// `channelWritabilityChanged`. Yields to the event loop every 4 MiB.
    ///
    /// Not re-entrant: a flush can fire `channelWritabilityChanged` synchronously, and the
    /// outer loop re-checks writability after every write anyway.
    private func pump(context: ChannelHandlerContext) {
        guard !self.pumping else { return }
        self.pumping = true
        defer { self.pumping = false }
        var chunks = 0
        while self.active, let stream = self.stream, stream.sent < stream.total, context.channel.isWritable {
            if chunks == 64 {
                self.schedulePump(context: context)
                return
            }
            let length = Int(min(UInt64(BytePattern.chunkSize), stream.total - stream.sent))
            let slice = BytePattern.slice(offset: stream.sent, length: length)
            self.stream!.sent = stream.sent + UInt64(length)
            chunks += 1
            context.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(slice))), promise: nil)
        }
        if self.active, let stream = self.stream, stream.sent == stream.total {
            self.stream = nil
            self.complete(context: context)
        }
    }

    private func schedulePump(context: ChannelHandlerContext) {
        guard !self.pumpScheduled else { return }
        self.pumpScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.pumpScheduled = false
            self.pump(context: context)
        }
    }

    private func hashOf(context: ChannelHandlerContext, _ request: Request, count: UInt64) {
        if count <= Self.inlineHashLimit {
            self.respondHash(context: context, request, BytePattern.computeAndCacheFNV1a64(count: count))
        } else if let hit = BytePattern.cachedFNV1a64(count: count) {
            self.respondHash(context: context, request, hit)
        } else {
            NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) {
                BytePattern.computeAndCacheFNV1a64(count: count)
            }.assumeIsolated().whenComplete { result in
                guard self.active else { return }
                switch result {
                case .success(let value):
                    self.respondHash(context: context, request, value)
                case .failure:
                    context.close(promise: nil)
                }
            }
        }
    }

    private func respondHash(context: ChannelHandlerContext, _ request: Request, _ value: UInt64) {
        var body = context.channel.allocator.buffer(capacity: 16)
        body.writeString(FNV1a64.hex(value))
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        self.respond(context: context, request, status: .ok, headers: headers, body: body)
    }

    private func status(context: ChannelHandlerContext, _ request: Request, code: Int) {
        let status = HTTPResponseStatus(statusCode: code)
        switch code {
        case 204, 304:
            self.respond(context: context, request, status: status, headers: HTTPHeaders(), body: nil)
        case 205:
            self.respond(
                context: context, request, status: status, headers: ["Content-Length": "0"], body: nil)
        default:
            var body = context.channel.allocator.buffer(capacity: 32)
            body.writeStaticString("{\"status\":")
            body.writeJSONNumber(code)
            body.writeStaticString("}\n")
            self.respondJSON(context: context, request, status: status, body: body)
        }
    }

    /// Head with `Content-Length: 1000` and the first 500 pattern bytes; after `ms` the last 500.
    private func slowBody(context: ChannelHandlerContext, _ request: Request, milliseconds ms: Int64) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/octet-stream")
        headers.add(name: "Content-Length", value: "1000")
        self.writeHead(context: context, request, status: .ok, headers: headers)
        if !request.isHEAD {
            self.writeBody(context: context, BytePattern.slice(offset: 0, length: 500))
        }
        context.flush()
        self.scheduled = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(ms)) {
            self.scheduled = nil
            guard self.active else { return }
            if !request.isHEAD {
                self.writeBody(context: context, BytePattern.slice(offset: 500, length: 500))
            }
            self.complete(context: context)
        }
    }

    /// Head with `Content-Length: 100000`, 10000 pattern bytes, then (20 ms later, so the
    /// peer has read them) an abortive close: SO_LINGER 0 makes the kernel send RST.
    private func resetMidBody(context: ChannelHandlerContext, _ request: Request) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/octet-stream")
        headers.add(name: "Content-Length", value: "100000")
        self.keepAlive = false
        self.writeHead(context: context, request, status: .ok, headers: headers)
        if !request.isHEAD {
            self.writeBody(context: context, BytePattern.slice(offset: 0, length: 10_000))
        }
        context.flush()
        self.scheduled = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(20)) {
            self.scheduled = nil
            guard self.active else { return }
            let channel = context.channel
            if let provider = channel as? SocketOptionProvider {
                provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in
                    channel.close(promise: nil)
                }
            } else {
                channel.close(promise: nil)
            }
        }
    }

    // MARK: - Writing

    private func respond(context: ChannelHandlerContext, _ request: Request, _ fixed: FixedResponse) {
        self.respond(context: context, request, status: fixed.status, headers: fixed.headers, body: fixed.body)
    }

    private func respondJSON(
        context: ChannelHandlerContext, _ request: Request, status: HTTPResponseStatus = .ok, body: ByteBuffer
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        self.respond(context: context, request, status: status, headers: headers, body: body)
    }

    /// A complete response. For HEAD: the same head (same `Content-Length`), no body.
    private func respond(
        context: ChannelHandlerContext, _ request: Request, status: HTTPResponseStatus,
        headers: HTTPHeaders, body: ByteBuffer?
    ) {
        self.writeHead(context: context, request, status: status, headers: headers)
        if !request.isHEAD, let body, body.readableBytes > 0 {
            self.writeBody(context: context, body)
        }
        self.complete(context: context)
    }

    private func writeHead(
        context: ChannelHandlerContext, _ request: Request, status: HTTPResponseStatus, headers: HTTPHeaders
    ) {
        var headers = headers
        headers.add(name: "X-Request-Id", value: String(request.requestID))
        let version = request.head.version
        if version.major == 1 && version.minor == 0 {
            if self.keepAlive { headers.add(name: "Connection", value: "keep-alive") }
        } else if !self.keepAlive {
            headers.add(name: "Connection", value: "close")
        }
        let head = HTTPResponseHead(version: version, status: status, headers: headers)
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
    }

    private func writeBody(context: ChannelHandlerContext, _ body: ByteBuffer) {
        context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
    }

    /// Ends the response. State is settled before the write: writing `.end` may deliver the
    /// next pipelined request to this handler re-entrantly.
    private func complete(context: ChannelHandlerContext) {
        let keepAlive = self.keepAlive && !self.inputClosed
        self.responding = false
        self.keepAlive = true
        if keepAlive {
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            let channel = context.channel
            context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
    }
}
