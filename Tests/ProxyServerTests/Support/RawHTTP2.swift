import NIOCore
import NIOEmbedded
import NIOHPACK

/// HTTP/2 frames written and read byte by byte, for what a client library would refuse to
/// send: header blocks split over CONTINUATION frames, floods, malformed frames.
struct RawFrame {
    var type: UInt8
    var flags: UInt8
    var stream: UInt32
    var payload: [UInt8]

    static let data: UInt8 = 0x0, headers: UInt8 = 0x1, rstStream: UInt8 = 0x3, settings: UInt8 = 0x4
    static let ping: UInt8 = 0x6, goAway: UInt8 = 0x7, windowUpdate: UInt8 = 0x8, continuation: UInt8 = 0x9
    static let endStream: UInt8 = 0x1, endHeaders: UInt8 = 0x4, ack: UInt8 = 0x1

    var bytes: [UInt8] {
        let n = payload.count
        return [UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF), type, flags]
            + [UInt8(stream >> 24 & 0x7F), UInt8(stream >> 16 & 0xFF), UInt8(stream >> 8 & 0xFF), UInt8(stream & 0xFF)]
            + payload
    }

    /// The 32-bit error code of a RST_STREAM, or of a GOAWAY (after its last stream id).
    var errorCode: UInt32? {
        let at: Int
        switch type {
        case Self.rstStream: at = 0
        case Self.goAway: at = 4
        default: return nil
        }
        guard payload.count >= at + 4 else { return nil }
        return payload[at..<(at + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// A header block in HPACK's simplest form: every field a literal without indexing, no
    /// Huffman coding (so it is exactly as large as it looks).
    static func headerBlock(_ fields: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        func integer(_ value: Int, prefixBits: Int, first: UInt8) {
            let max = (1 << prefixBits) - 1
            if value < max {
                out.append(first | UInt8(value))
                return
            }
            out.append(first | UInt8(max))
            var rest = value - max
            while rest >= 128 {
                out.append(UInt8(rest % 128 + 128))
                rest /= 128
            }
            out.append(UInt8(rest))
        }
        for (name, value) in fields {
            out.append(0x00)
            integer(name.utf8.count, prefixBits: 7, first: 0)
            out += Array(name.utf8)
            integer(value.utf8.count, prefixBits: 7, first: 0)
            out += Array(value.utf8)
        }
        return out
    }

    /// A request's HEADERS, split into CONTINUATION frames of at most `frameSize` bytes.
    static func request(
        stream: UInt32, method: String = "GET", path: String, headers: [(String, String)] = [],
        endStream: Bool = true, frameSize: Int = 16_384
    ) -> [UInt8] {
        let block = headerBlock(
            [(":method", method), (":scheme", "https"), (":authority", "proxy.example"), (":path", path)] + headers)
        var frames: [UInt8] = []
        var offset = 0
        var first = true
        repeat {
            let end = min(block.count, offset + frameSize)
            var flags: UInt8 = end == block.count ? Self.endHeaders : 0
            if first && endStream { flags |= Self.endStream }
            frames +=
                RawFrame(
                    type: first ? Self.headers : Self.continuation, flags: flags, stream: stream,
                    payload: Array(block[offset..<end])
                ).bytes
            first = false
            offset = end
        } while offset < block.count
        return frames
    }
}

/// A client that speaks raw bytes to the server of an `HTTP2Harness`-style EmbeddedChannel and
/// parses what comes back (HEADERS blocks decoded in order with NIOHPACK).
final class RawHTTP2Client {
    let server: EmbeddedChannel
    private var decoder = HPACKDecoder(allocator: ByteBufferAllocator())
    private var pending: [UInt8] = []
    private(set) var frames: [RawFrame] = []
    /// Decoded response header blocks by stream.
    private(set) var headers: [UInt32: HPACKHeaders] = [:]
    private var block: [UInt8] = []

    init(server: EmbeddedChannel) throws {
        self.server = server
        // The preface, empty SETTINGS; the server's SETTINGS are acknowledged as they come.
        try send(
            Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
                + RawFrame(type: RawFrame.settings, flags: 0, stream: 0, payload: []).bytes)
    }

    func send(_ bytes: [UInt8]) throws {
        if server.isActive {
            try server.writeInbound(ByteBuffer(bytes: bytes))
            server.pipeline.fireChannelReadComplete()
        }
        try pump()
    }

    /// Runs the server's tasks and reads what it wrote.
    func pump() throws {
        server.embeddedEventLoop.run()
        while let buffer = try server.readOutbound(as: ByteBuffer.self) {
            pending += buffer.readableBytesView
        }
        while pending.count >= 9 {
            let length = Int(pending[0]) << 16 | Int(pending[1]) << 8 | Int(pending[2])
            guard pending.count >= 9 + length else { break }
            let stream =
                UInt32(pending[5] & 0x7F) << 24 | UInt32(pending[6]) << 16 | UInt32(pending[7]) << 8
                | UInt32(pending[8])
            let frame = RawFrame(
                type: pending[3], flags: pending[4], stream: stream, payload: Array(pending[9..<(9 + length)]))
            pending.removeFirst(9 + length)
            frames.append(frame)
            try received(frame)
        }
    }

    private func received(_ frame: RawFrame) throws {
        switch frame.type {
        case RawFrame.settings where frame.flags & RawFrame.ack == 0:
            try send(RawFrame(type: RawFrame.settings, flags: RawFrame.ack, stream: 0, payload: []).bytes)
        case RawFrame.headers, RawFrame.continuation:
            block += frame.payload
            if frame.flags & RawFrame.endHeaders != 0 {
                var buffer = ByteBuffer(bytes: block)
                block = []
                headers[frame.stream] = try decoder.decodeHeaders(from: &buffer)
            }
        default:
            break
        }
    }

    func status(_ stream: UInt32) -> Int? { headers[stream]?.first(name: ":status").flatMap { Int($0) } }

    /// The error code of the last RST_STREAM on `stream`.
    func reset(_ stream: UInt32) -> UInt32? {
        frames.last { $0.type == RawFrame.rstStream && $0.stream == stream }?.errorCode
    }

    var goAwayCodes: [UInt32] { frames.filter { $0.type == RawFrame.goAway }.compactMap(\.errorCode) }
}
