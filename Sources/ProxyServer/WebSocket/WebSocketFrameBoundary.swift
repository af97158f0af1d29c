import NIOCore

/// Follows the frame structure (RFC 6455 §5.2) of the bytes an upstream sends a client through
/// a WebSocket tunnel, without copying or changing them, so the proxy knows where a frame ends:
/// the one place it may put a frame of its own (the Close with 1001 at shutdown). Control
/// frames may come between the fragments of a message, so every frame end is such a place.
struct WebSocketFrameBoundary {
    private enum State {
        /// Reading a frame header: `have` of its bytes so far (the length is known after two).
        case header(have: Int)
        /// Inside a payload.
        case payload(remaining: UInt64)
    }

    private var state = State.header(have: 0)
    /// The header bytes read so far (at most 14: 2, 8 for the longest length, 4 for a mask).
    private var header: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0
    )

    /// Nothing of a frame has been seen since the last one ended.
    var isAtBoundary: Bool {
        if case .header(0) = state { return true }
        return false
    }

    /// Walks `bytes`; with `stopAtBoundary`, stops where the current frame ends (0 when it is
    /// already at a boundary). Returns how many bytes it walked over.
    mutating func advance(over bytes: ByteBuffer, stopAtBoundary: Bool = false) -> Int {
        if stopAtBoundary && isAtBoundary { return 0 }
        return bytes.withUnsafeReadableBytes { raw in
            var i = 0
            while i < raw.count {
                switch state {
                case .payload(let remaining):
                    let n = Int(min(UInt64(raw.count - i), remaining))
                    i += n
                    state = remaining - UInt64(n) == 0 ? .header(have: 0) : .payload(remaining: remaining - UInt64(n))
                case .header(let have):
                    setHeaderByte(have, raw[i])
                    i += 1
                    let count = have + 1
                    if let payload = payloadLength(haveBytes: count) {
                        state = payload == 0 ? .header(have: 0) : .payload(remaining: payload)
                    } else {
                        state = .header(have: count)
                    }
                }
                if stopAtBoundary && isAtBoundary { return i }
            }
            return i
        }
    }

    /// The payload length once the whole header is in, else nil.
    private func payloadLength(haveBytes count: Int) -> UInt64? {
        guard count >= 2 else { return nil }
        let masked = headerByte(1) & 0x80 != 0
        let short = headerByte(1) & 0x7F
        let extended = short == 126 ? 2 : short == 127 ? 8 : 0
        guard count >= 2 + extended + (masked ? 4 : 0) else { return nil }
        if extended == 0 { return UInt64(short) }
        var length: UInt64 = 0
        for k in 0..<extended { length = length << 8 | UInt64(headerByte(2 + k)) }
        return length
    }

    // Only the first ten header bytes are ever read (two, and eight of extended length); a
    // mask key after them is counted, not kept.
    private mutating func setHeaderByte(_ index: Int, _ byte: UInt8) {
        guard index < 10 else { return }
        withUnsafeMutableBytes(of: &header) { $0[index] = byte }
    }

    private func headerByte(_ index: Int) -> UInt8 {
        withUnsafeBytes(of: header) { $0[index] }
    }

    /// A Close frame from the server side (unmasked) with `code` and no reason.
    static func closeFrame(code: UInt16, allocator: ByteBufferAllocator) -> ByteBuffer {
        var frame = allocator.buffer(capacity: 4)
        frame.writeInteger(UInt8(0x88))
        frame.writeInteger(UInt8(2))
        frame.writeInteger(code)
        return frame
    }
}
