import CurlBridge
import HeaderFields
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// Shared by every test: created once, before any file-descriptor baseline is taken.
let testGroup = MultiThreadedEventLoopGroup(numberOfThreads: 2)

/// Byte `i` of every test body (request and response): cheap to generate and to check.
func patternByte(_ offset: Int) -> UInt8 { UInt8(truncatingIfNeeded: offset % 251) }

let patternBytes: [UInt8] = (0..<(65536 + 251)).map(patternByte)

/// `length` pattern bytes as they appear at `offset` of a body.
func patternSlice(offset: Int, length: Int) -> ByteBuffer {
    precondition(length <= 65536)
    let start = offset % 251
    return ByteBuffer(bytes: patternBytes[start..<(start + length)])
}

func fnv1a(_ hash: UInt64, _ buffer: ByteBuffer) -> UInt64 {
    buffer.withUnsafeReadableBytes { bytes in
        var h = hash
        for byte in bytes { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return h
    }
}

let fnvOffset: UInt64 = 0xcbf2_9ce4_8422_2325

struct RecordedRequest: Sendable {
    var method: String
    var uri: String
    var headers: [HeaderField]
    var bodyLength: Int
    var bodyHash: UInt64
}

/// What the upstream saw, shared between its channels and the test.
final class UpstreamRecord: Sendable {
    let accepted = Atomic<Int>(0)
    private let state = Mutex(State())

    private struct State {
        var open = 0
        var idleWaiters: [EventLoopPromise<Void>] = []
        var requests: [RecordedRequest] = []
        var heads = 0
        var headWaiters: [(Int, EventLoopPromise<Void>)] = []
        var closeFutures: [String: EventLoopFuture<Void>] = [:]
        var taggedChannels: [String: any Channel] = [:]
    }

    var requests: [RecordedRequest] { state.withLock { $0.requests } }

    func opened(_ channel: any Channel) {
        accepted.add(1, ordering: .relaxed)
        state.withLock { $0.open += 1 }
        channel.closeFuture.whenComplete { _ in
            let waiters: [EventLoopPromise<Void>] = self.state.withLock { state in
                state.open -= 1
                guard state.open == 0 else { return [] }
                defer { state.idleWaiters = [] }
                return state.idleWaiters
            }
            for waiter in waiters { waiter.succeed() }
        }
    }

    func sawHead(tag: String?, channel: any Channel) {
        let ready: [EventLoopPromise<Void>] = state.withLock { state in
            state.heads += 1
            if let tag {
                state.closeFutures[tag] = channel.closeFuture
                state.taggedChannels[tag] = channel
            }
            let heads = state.heads
            let ready = state.headWaiters.filter { $0.0 <= heads }.map(\.1)
            state.headWaiters.removeAll { $0.0 <= heads }
            return ready
        }
        for promise in ready { promise.succeed() }
    }

    func record(_ request: RecordedRequest) {
        state.withLock { $0.requests.append(request) }
    }

    func closeFuture(tag: String) -> EventLoopFuture<Void>? {
        state.withLock { $0.closeFutures[tag] }
    }

    /// The connection that carried the request tagged `tag`.
    func channel(tag: String) -> (any Channel)? {
        state.withLock { $0.taggedChannels[tag] }
    }

    /// Completes once `count` request heads arrived in total.
    func heads(atLeast count: Int) -> EventLoopFuture<Void> {
        let promise = testGroup.next().makePromise(of: Void.self)
        let already = state.withLock { state -> Bool in
            if state.heads >= count { return true }
            state.headWaiters.append((count, promise))
            return false
        }
        if already { promise.succeed() }
        return promise.futureResult
    }

    /// Completes once no upstream connection is open.
    func allClosed() -> EventLoopFuture<Void> {
        let promise = testGroup.next().makePromise(of: Void.self)
        let already = state.withLock { state -> Bool in
            if state.open == 0 { return true }
            state.idleWaiters.append(promise)
            return false
        }
        if already { promise.succeed() }
        return promise.futureResult
    }
}

/// A real HTTP/1.1 upstream on 127.0.0.1:0. Routes:
/// `/echo` (request line and headers as text; body length and hash in headers), `/hello`,
/// `/stream?bytes=N[&chunked=1]`, `/cut?bytes=N` (promises 2N, sends N, closes), `/hang`,
/// `/continue` (100 then 200), `/repeat` (repeated response headers), `/nocontent` (204).
/// `&tag=T` registers the connection's close future under T.
/// With `tls`, the same over HTTPS (`url` then says `https://`).
final class TestUpstream: Sendable {
    let channel: any Channel
    let record: UpstreamRecord
    let scheme: String
    var port: Int { channel.localAddress?.port ?? 0 }

    private init(channel: any Channel, record: UpstreamRecord, scheme: String) {
        self.channel = channel
        self.record = record
        self.scheme = scheme
    }

    static func start(tls: NIOSSLContext? = nil) async throws -> TestUpstream {
        let record = UpstreamRecord()
        let channel = try await ServerBootstrap(group: testGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                record.opened(channel)
                return channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler(record: record))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return TestUpstream(channel: channel, record: record, scheme: tls == nil ? "http" : "https")
    }

    func url(_ path: String) -> String { "\(scheme)://127.0.0.1:\(port)\(path)" }

    func stop() async throws {
        try await channel.close()
    }
}

private final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let record: UpstreamRecord
    var head: HTTPRequestHead?
    var bodyLength = 0
    var bodyHash = fnvOffset
    var streamRemaining = 0
    var streamOffset = 0
    var streaming = false
    var closeWhenSent = false

    init(record: UpstreamRecord) { self.record = record }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            bodyLength = 0
            bodyHash = fnvOffset
            record.sawHead(tag: Self.query(head.uri, "tag"), channel: context.channel)
        case .body(let buffer):
            bodyLength += buffer.readableBytes
            bodyHash = fnv1a(bodyHash, buffer)
        case .end:
            guard let head else { return }
            record.record(
                RecordedRequest(
                    method: head.method.rawValue, uri: head.uri,
                    headers: head.headers.map { HeaderField($0.name, $0.value) },
                    bodyLength: bodyLength, bodyHash: bodyHash))
            respond(context: context, head: head)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if streaming { pump(context: context) }
        context.fireChannelWritabilityChanged()
    }

    private static func query(_ uri: String, _ key: String) -> String? {
        guard let q = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return nil }
        for pair in q.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.count == 2 && kv[0] == key { return String(kv[1]) }
        }
        return nil
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let isHead = head.method == .HEAD
        switch path {
        case "/echo":
            var text = "\(head.method.rawValue) \(head.uri)\n"
            for (name, value) in head.headers { text += "\(name): \(value)\n" }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Length", value: "\(text.utf8.count)")
            headers.add(name: "X-Body-Length", value: "\(bodyLength)")
            headers.add(name: "X-Body-Hash", value: String(bodyHash, radix: 16))
            send(context, .ok, headers, body: isHead ? nil : text)
        case "/hello":
            send(context, .ok, ["Content-Length": "5"], body: isHead ? nil : "hello")
        case "/repeat":
            let headers = HTTPHeaders([
                ("X-Rep", "a"), ("content-type", "text/plain"), ("X-Rep", "b"), ("Set-Cookie", "x=1"),
                ("Set-Cookie", "y=2"), ("Content-Length", "2"),
            ])
            send(context, .ok, headers, body: isHead ? nil : "ok")
        case "/nocontent":
            send(context, .noContent, [:], body: nil)
        case "/continue":
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
            send(context, .ok, ["Content-Length": "2"], body: "ok")
        case "/hang":
            break
        case "/stream", "/cut":
            let bytes = Int(Self.query(head.uri, "bytes") ?? "") ?? 0
            var headers = HTTPHeaders()
            if path == "/cut" {
                headers.add(name: "Content-Length", value: "\(bytes * 2)")
                closeWhenSent = true
            } else if Self.query(head.uri, "chunked") == nil {
                headers.add(name: "Content-Length", value: "\(bytes)")
            }
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))),
                promise: nil)
            streamRemaining = isHead ? 0 : bytes
            streamOffset = 0
            streaming = true
            pump(context: context)
        default:
            send(context, .notFound, ["Content-Length": "0"], body: nil)
        }
    }

    private func send(
        _ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ headers: HTTPHeaders, body: String?
    ) {
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if let body {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private var pumping = false

    private func pump(context: ChannelHandlerContext) {
        // write/flush fire writability changes synchronously: no re-entry.
        guard !pumping else { return }
        pumping = true
        defer { pumping = false }
        while streamRemaining > 0 {
            while streamRemaining > 0 && context.channel.isWritable {
                let n = min(65536, streamRemaining)
                let chunk = patternSlice(offset: streamOffset, length: n)
                streamOffset += n
                streamRemaining -= n
                context.write(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
            }
            if streamRemaining == 0 { break }
            context.flush()
            // Still full: channelWritabilityChanged calls again.
            if !context.channel.isWritable { return }
        }
        streaming = false
        if closeWhenSent {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer())))).whenComplete { _ in
                channel.close(promise: nil)
            }
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
