import CurlBridge
import HeaderFields
import NIOCore
import Upstream

#if canImport(Glibc)
    import Glibc
#endif

/// A WebSocket frame as the tests see it.
struct Frame: Sendable {
    var fin: Bool
    var opcode: UInt8
    var payload: ByteBuffer

    static let continuation: UInt8 = 0x0
    static let text: UInt8 = 0x1
    static let binary: UInt8 = 0x2
    static let close: UInt8 = 0x8
    static let ping: UInt8 = 0x9
    static let pong: UInt8 = 0xA

    var text: String { String(buffer: payload) }
}

/// A client frame (RFC 6455 §5.2: masked), written here rather than with NIO's encoder, so
/// the tunnel is checked against an independent implementation.
func clientFrame(
    _ opcode: UInt8, _ payload: ByteBuffer, fin: Bool = true, mask: [UInt8] = [0x37, 0xfa, 0x21, 0x3d]
)
    -> ByteBuffer
{
    var out = ByteBuffer()
    out.writeInteger(UInt8(fin ? 0x80 : 0) | opcode)
    let n = payload.readableBytes
    if n < 126 {
        out.writeInteger(UInt8(0x80 | n))
    } else if n <= 0xFFFF {
        out.writeInteger(UInt8(0x80 | 126))
        out.writeInteger(UInt16(n))
    } else {
        out.writeInteger(UInt8(0x80 | 127))
        out.writeInteger(UInt64(n))
    }
    out.writeBytes(mask)
    // Eight bytes at a time: a 4 MiB message masked byte by byte takes seconds in a debug build.
    let word = UInt64(mask[0]) | UInt64(mask[1]) << 8 | UInt64(mask[2]) << 16 | UInt64(mask[3]) << 24
    let mask64 = word | word << 32
    out.writeWithUnsafeMutableBytes(minimumWritableBytes: n) { target in
        payload.withUnsafeReadableBytes { source in
            var i = 0
            while i + 8 <= n {
                let value = source.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                target.storeBytes(of: value ^ mask64, toByteOffset: i, as: UInt64.self)
                i += 8
            }
            while i < n {
                target[i] = source[i] ^ mask[i & 3]
                i += 1
            }
        }
        return n
    }
    return out
}

func clientFrame(_ opcode: UInt8, _ text: String, fin: Bool = true) -> ByteBuffer {
    clientFrame(opcode, ByteBuffer(string: text), fin: fin)
}

/// A Close frame's payload: the code, then the reason.
func closePayload(_ code: UInt16, _ reason: String) -> ByteBuffer {
    var payload = ByteBuffer()
    payload.writeInteger(code)
    payload.writeString(reason)
    return payload
}

/// Server frames (unmasked) out of the tunnel's bytes, however they were cut.
struct ServerFrameDecoder {
    struct Malformed: Error {}
    private var buffer = ByteBuffer()

    mutating func feed(_ bytes: ByteBuffer) {
        var bytes = bytes
        buffer.writeBuffer(&bytes)
    }

    mutating func next() throws -> Frame? {
        var view = buffer
        guard let first = view.readInteger(as: UInt8.self), let second = view.readInteger(as: UInt8.self) else {
            return nil
        }
        guard second & 0x80 == 0 else { throw Malformed() }
        var length = UInt64(second & 0x7F)
        if length == 126 {
            guard let n = view.readInteger(as: UInt16.self) else { return nil }
            length = UInt64(n)
        } else if length == 127 {
            guard let n = view.readInteger(as: UInt64.self) else { return nil }
            length = n
        }
        guard let payload = view.readSlice(length: Int(length)) else { return nil }
        buffer = view
        if buffer.readerIndex > 1 << 20 { buffer.discardReadBytes() }
        return Frame(fin: first & 0x80 != 0, opcode: first & 0x0F, payload: payload)
    }
}

/// A WebSocket handshake for `path`, with `extra` header lines after the required ones.
func handshake(_ path: String, extra: [HeaderField] = []) -> (ByteBuffer, [HeaderField]) {
    let headers =
        [
            HeaderField("Host", "upstream.test"), HeaderField("Upgrade", "websocket"),
            HeaderField("Connection", "Upgrade"), HeaderField("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            HeaderField("Sec-WebSocket-Version", "13"),
        ] + extra
    var text = "GET \(path) HTTP/1.1\r\n"
    for field in headers { text += "\(field.name): \(field.value)\r\n" }
    text += "\r\n"
    return (ByteBuffer(string: text), headers)
}

/// `idleTimeout` defaults to a minute: a loaded full run can hold a test's task for tens of
/// seconds between two sends, and only the idle tests mean to time out.
func tunnelRequest(_ url: String, path: String, extra: [HeaderField] = [], idleTimeout: Int = 60_000) -> TunnelRequest {
    TunnelRequest(
        url: url, handshake: handshake(path, extra: extra).0, connectTimeoutMilliseconds: 2000,
        idleTimeoutMilliseconds: idleTimeout)
}

/// The client side of one tunnel, confined to its EventLoop (`@unchecked Sendable`): it gives
/// credit back as the server would (unless `consuming` is off), decodes the upstream's frames
/// after a 101, and lets the test wait for any condition on what arrived.
final class TunnelClient: @unchecked Sendable {
    let eventLoop: any EventLoop
    var transfer: (any UpstreamTransfer)?
    var status: Int?
    var reason = ""
    var headers: [HeaderField] = []
    /// Every upstream byte after the head (a non-101 answer's de-framed body, or frames).
    var body = ByteBuffer()
    var keepBody = true
    var decoder = ServerFrameDecoder()
    /// Frames whose payload is at most `keptFrameLimit` bytes (others are counted, not kept).
    var frames: [Frame] = []
    var keptFrameLimit = 8 << 20
    var terminal: Terminal?
    var delivered = 0
    var unconsumed = 0
    var peakUnconsumed = 0
    /// Give credit back as bytes arrive (a writable client that wrote them).
    var consuming = true
    var consumeDelay: TimeAmount?
    var bodyConsumed = 0
    var sent = 0
    var eventsAfterDone = 0
    /// Binary payload bytes received, and whether they follow the push pattern.
    var payloadBytes = 0
    var payloadIntact = true
    var checkPayloadPattern = false
    private var waiters: [(condition: (TunnelClient) -> Bool, promise: EventLoopPromise<Void>)] = []

    init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func start(_ transport: any UpstreamTransport, _ request: TunnelRequest, writable: Bool = true) {
        transfer = transport.startTunnel(request, on: eventLoop) { event in self.handle(event) }
        if !writable { transfer?.setClientWritable(false) }
    }

    /// Sends `buffer` (frames) to the upstream.
    func send(_ buffer: ByteBuffer) {
        sent += buffer.readableBytes
        transfer?.sendBody(buffer)
    }

    /// Starts giving credit back for what arrived and what arrives.
    func startConsuming() {
        consuming = true
        let n = unconsumed
        unconsumed = 0
        transfer?.consumed(n)
        transfer?.setClientWritable(true)
    }

    private func handle(_ event: UpstreamEvent) {
        if terminal != nil {
            eventsAfterDone += 1
            return
        }
        switch event {
        case .head(let status, let reason, let headers):
            self.status = status
            self.reason = reason
            self.headers = headers
        case .body(let buffer):
            let n = buffer.readableBytes
            delivered += n
            if keepBody { body.writeImmutableBuffer(buffer) }
            if status == 101 { decode(buffer) }
            unconsumed += n
            peakUnconsumed = max(peakUnconsumed, unconsumed)
            if consuming {
                if let delay = consumeDelay {
                    eventLoop.scheduleTask(in: delay) {
                        self.unconsumed -= n
                        self.transfer?.consumed(n)
                    }
                } else {
                    unconsumed -= n
                    transfer?.consumed(n)
                }
            }
        case .bodyConsumed(let n):
            bodyConsumed += n
        case .end:
            terminal = .end
        case .failed(let error):
            terminal = .failed(error)
        }
        checkWaiters()
    }

    private func decode(_ buffer: ByteBuffer) {
        decoder.feed(buffer)
        do {
            while let frame = try decoder.next() {
                if frame.opcode == Frame.binary || frame.opcode == Frame.continuation {
                    if checkPayloadPattern { checkPattern(frame.payload) }
                    payloadBytes += frame.payload.readableBytes
                }
                if frame.payload.readableBytes <= keptFrameLimit { frames.append(frame) }
            }
        } catch {
            payloadIntact = false
        }
    }

    private func checkPattern(_ payload: ByteBuffer) {
        payload.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = min(65536, bytes.count - offset)
                let start = (payloadBytes + offset) % 251
                let same = patternBytes.withUnsafeBytes { pattern in
                    memcmp(bytes.baseAddress! + offset, pattern.baseAddress! + start, n) == 0
                }
                if !same { payloadIntact = false }
                offset += n
            }
        }
    }

    private func checkWaiters() {
        var index = 0
        while index < waiters.count {
            if waiters[index].condition(self) {
                waiters.remove(at: index).promise.succeed()
            } else {
                index += 1
            }
        }
    }

    /// Completes once `condition` holds (checked now and after every event); fails after `bound`.
    func when(
        _ condition: @escaping (TunnelClient) -> Bool, within bound: TimeAmount = .seconds(10)
    )
        -> EventLoopFuture<Void>
    {
        let promise = eventLoop.makePromise(of: Void.self)
        if condition(self) {
            promise.succeed()
        } else {
            waiters.append((condition, promise))
            let timer = eventLoop.scheduleTask(in: bound) {
                promise.fail(TestTimeout(seconds: bound.nanoseconds / 1_000_000_000))
            }
            // Also checked every few milliseconds: some conditions change without an event
            // (the transfer's pause count moves when the worker's pause notice is handled).
            let poll = eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(5), delay: .milliseconds(5)) { _ in
                self.checkWaiters()
            }
            promise.futureResult.whenComplete { _ in
                timer.cancel()
                poll.cancel()
            }
        }
        return promise.futureResult
    }
}

extension TunnelClient {
    /// Starts a tunnel on a loop and returns its client.
    static func open(
        _ transport: any UpstreamTransport, _ request: TunnelRequest, on eventLoop: any EventLoop = testGroup.next(),
        writable: Bool = true, configure: @escaping @Sendable (TunnelClient) -> Void = { _ in }
    ) async throws -> TunnelClient {
        let client = TunnelClient(eventLoop: eventLoop)
        try await eventLoop.submit {
            configure(client)
            client.start(transport, request, writable: writable)
        }.get()
        return client
    }

    /// Waits (on the client's loop) until `condition` holds.
    func wait(
        until condition: @escaping @Sendable (TunnelClient) -> Bool, within bound: TimeAmount = .seconds(10)
    ) async throws {
        try await eventLoop.flatSubmit { self.when(condition, within: bound) }.get()
    }

    /// Runs `body` on the client's loop.
    func run<T: Sendable>(_ body: @escaping @Sendable (TunnelClient) -> T) async throws -> T {
        try await eventLoop.submit { body(self) }.get()
    }
}

/// The first `count` pattern bytes in one buffer.
func patternBuffer(count: Int) -> ByteBuffer {
    var buffer = ByteBuffer()
    var offset = 0
    while offset < count {
        let n = min(65536, count - offset)
        buffer.writeImmutableBuffer(patternSlice(offset: offset, length: n))
        offset += n
    }
    return buffer
}

/// Resident memory of this process, in bytes.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}
