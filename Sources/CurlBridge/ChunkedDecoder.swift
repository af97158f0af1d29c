/// Takes the chunked framing (RFC 9112 §7.1) off a response body as its bytes arrive, in
/// pieces of any size: the chunk data comes out, sizes, extensions and trailers do not.
///
/// Used for the answer to a WebSocket handshake that is not a `101` (curl de-frames every
/// other response, but a tunnel reads its connection itself). Line ends may be CRLF or a bare
/// LF, as curl accepts them; chunk extensions and trailer fields are skipped.
package struct ChunkedDecoder: Sendable {
    /// Why a body is not valid chunked framing.
    package enum Failure: Error, Equatable, Sendable {
        /// A chunk-size line without hex digits, with more than 15 of them, or with a byte a size line may not hold.
        case badChunkSize
        /// Chunk data not followed by its line end.
        case missingLineEnd
        /// A size line (extensions included) or a trailer line longer than `maxLineLength`.
        case lineTooLong
    }

    private enum State: Sendable {
        /// Reading the hex digits of a chunk size (accumulated in `size`).
        case size(digits: Int)
        case sizeExtension
        case sizeLF
        case data(remaining: UInt64)
        case dataCR
        case dataLF
        case trailerLineStart
        case trailerLine
        case finalLF
        case done
    }

    /// Size and trailer lines longer than this are refused (curl's own limit is similar).
    package static let maxLineLength = 16 * 1024

    private var state = State.size(digits: 0)
    /// The chunk size being read.
    private var size: UInt64 = 0
    private var lineLength = 0

    package init() {}

    /// The last chunk and the trailer section have been read: the body is complete.
    package var isComplete: Bool {
        if case .done = state { return true }
        return false
    }

    /// Feeds the next bytes of the body, calling `data` with each run of chunk data in order.
    /// Returns how many bytes belong to the body: all of them, or fewer when the body ended
    /// inside `bytes` (what follows is not this body's).
    package mutating func feed(
        _ bytes: UnsafeRawBufferPointer, _ data: (UnsafeRawBufferPointer) -> Void
    ) throws(Failure) -> Int {
        var index = 0
        let count = bytes.count
        while index < count {
            switch state {
            case .data(let remaining):
                let n = Int(min(remaining, UInt64(count - index)))
                data(UnsafeRawBufferPointer(rebasing: bytes[index..<(index + n)]))
                index += n
                state = remaining == UInt64(n) ? .dataCR : .data(remaining: remaining - UInt64(n))
                continue
            case .done:
                return index
            default:
                break
            }
            try step(bytes[index])
            index += 1
        }
        return index
    }

    /// One framing byte (not chunk data).
    private mutating func step(_ byte: UInt8) throws(Failure) {
        let cr = UInt8(ascii: "\r")
        let lf = UInt8(ascii: "\n")
        switch state {
        case .size(let digits):
            if let digit = Self.hexValue(byte) {
                guard digits < 15 else { throw .badChunkSize }
                size = size << 4 | UInt64(digit)
                state = .size(digits: digits + 1)
            } else if digits > 0 && (byte == UInt8(ascii: ";") || byte == UInt8(ascii: " ") || byte == 0x09) {
                state = .sizeExtension
                try countLine()
            } else if digits > 0 && byte == cr {
                state = .sizeLF
            } else if digits > 0 && byte == lf {
                endSizeLine()
            } else {
                throw .badChunkSize
            }
        case .sizeExtension:
            if byte == cr {
                state = .sizeLF
            } else if byte == lf {
                endSizeLine()
            } else {
                try countLine()
            }
        case .sizeLF:
            guard byte == lf else { throw .badChunkSize }
            endSizeLine()
        case .dataCR:
            if byte == cr {
                state = .dataLF
            } else if byte == lf {
                startSizeLine()
            } else {
                throw .missingLineEnd
            }
        case .dataLF:
            guard byte == lf else { throw .missingLineEnd }
            startSizeLine()
        case .trailerLineStart:
            if byte == cr {
                state = .finalLF
            } else if byte == lf {
                state = .done
            } else {
                lineLength = 1
                state = .trailerLine
            }
        case .trailerLine:
            if byte == lf {
                lineLength = 0
                state = .trailerLineStart
            } else {
                try countLine()
            }
        case .finalLF:
            guard byte == lf else { throw .missingLineEnd }
            state = .done
        case .data, .done:
            break  // handled by `feed`
        }
    }

    private mutating func countLine() throws(Failure) {
        lineLength += 1
        guard lineLength <= Self.maxLineLength else { throw .lineTooLong }
    }

    private mutating func endSizeLine() {
        lineLength = 0
        state = size == 0 ? .trailerLineStart : .data(remaining: size)
    }

    private mutating func startSizeLine() {
        size = 0
        state = .size(digits: 0)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
