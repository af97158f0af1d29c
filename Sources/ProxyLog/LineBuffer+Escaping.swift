/// How request-derived text (origins, targets, header values: attacker-controlled) is
/// written so that no value can forge a line or a field.
///
/// Both formats share one escaped form inside quotes: `\"`, `\\`, `\n`, `\r`, `\t`, and
/// `\u00XX` for other control bytes and DEL. Valid UTF-8 is kept, except the scalars that
/// can disguise a line on a terminal or in a viewer (C1 controls, U+2028/U+2029, bidi
/// controls), which are written `\uXXXX`. A byte that is not part of valid UTF-8 becomes
/// U+FFFD, so a JSON line is always valid UTF-8.
extension LineBuffer {
    /// A logfmt value: bare when it is non-empty and every byte is printable ASCII other
    /// than space, `"`, `=` and `\`; otherwise quoted and escaped.
    package func appendTextValue(_ value: String) {
        var value = value
        value.withUTF8 { appendTextValue(bytes: $0) }
    }

    package func appendTextValue(bytes: UnsafeBufferPointer<UInt8>) {
        if !bytes.isEmpty, Self.allBare(bytes) {
            append(bytes)
            return
        }
        append(UInt8(ascii: "\""))
        appendEscaped(bytes)
        append(UInt8(ascii: "\""))
    }

    /// A JSON string literal, quotes included.
    package func appendJSONString(_ value: String) {
        var value = value
        value.withUTF8 { appendJSONString(bytes: $0) }
    }

    /// A JSON string's escaped contents, without the quotes.
    package func appendJSONStringBody(_ value: String) {
        var value = value
        value.withUTF8 { appendEscaped($0) }
    }

    package func appendJSONString(bytes: UnsafeBufferPointer<UInt8>) {
        append(UInt8(ascii: "\""))
        appendEscaped(bytes)
        append(UInt8(ascii: "\""))
    }

    /// A key from a library's metadata: letters, digits, `_`, `.` and `-` are kept, any
    /// other byte becomes `_`, so a key can never end a field or a line.
    package func appendSanitizedKey(_ key: String) {
        guard !key.isEmpty else {
            append(UInt8(ascii: "_"))
            return
        }
        for byte in key.utf8 {
            append(Self.isKeyByte(byte) ? byte : UInt8(ascii: "_"))
        }
    }

    // MARK: Scanning eight bytes at a time
    //
    // Values are scanned a word at a time (SWAR): a word with no byte that needs attention
    // is skipped whole. The per-byte rules below decide every word that has one.

    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highs: UInt64 = 0x8080_8080_8080_8080

    /// Nonzero when a byte of `word` is zero.
    @inline(__always)
    private static func zeroByte(_ word: UInt64) -> UInt64 { (word &- ones) & ~word & highs }

    /// Nonzero when a byte of `word` equals `byte`.
    @inline(__always)
    private static func byte(_ word: UInt64, equals byte: UInt8) -> UInt64 {
        zeroByte(word ^ (ones &* UInt64(byte)))
    }

    /// Nonzero when a byte of `word` is below `limit` (at most 0x80) or at or above 0x80.
    @inline(__always)
    private static func byte(_ word: UInt64, below limit: UInt8) -> UInt64 {
        ((word &- ones &* UInt64(limit)) & ~word & highs) | (word & highs)
    }

    /// Nonzero when a byte of `word` is not copied as it is inside quotes: a control byte,
    /// DEL, `"`, `\`, or a non-ASCII byte (decided one by one).
    @inline(__always)
    static func needsAttention(_ word: UInt64) -> UInt64 {
        byte(word, below: 0x20) | byte(word, equals: 0x7F) | byte(word, equals: 0x22) | byte(word, equals: 0x5C)
    }

    /// Whether `test` flags any word of `bytes`: whole words, then the last eight bytes
    /// (overlapping), or for a value under eight bytes one word padded with `a`, which no
    /// test flags. No byte-by-byte tail.
    @inline(__always)
    static func anyWord(_ bytes: UnsafeBufferPointer<UInt8>, _ test: (UInt64) -> UInt64) -> Bool {
        guard let start = bytes.baseAddress else { return false }
        let count = bytes.count
        let raw = UnsafeRawPointer(start)
        if count >= 8 {
            var index = 0
            while index + 8 <= count {
                if test(raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)) != 0 { return true }
                index += 8
            }
            return index < count && test(raw.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)) != 0
        }
        var word: UInt64 = 0x6161_6161_6161_6161
        for index in 0..<count {
            let shift = UInt64(index * 8)
            word = (word & ~(0xFF << shift)) | (UInt64(start[index]) << shift)
        }
        return test(word) != 0
    }

    /// Whether every byte may stand in a bare logfmt value.
    static func allBare(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        !anyWord(bytes) { needsAttention($0) | byte($0, equals: 0x20) | byte($0, equals: 0x3D) }
    }

    @inline(__always)
    static func isBare(_ byte: UInt8) -> Bool {
        // 0x21...0x7E, minus `"` `=` `\`.
        byte &- 0x21 < 0x5E && byte != 0x22 && byte != 0x3D && byte != 0x5C
    }

    @inline(__always)
    static func isKeyByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    /// The escaped body of a quoted value. Runs of bytes that need no escape are copied
    /// in one piece.
    @inline(__always)
    func appendEscaped(_ bytes: UnsafeBufferPointer<UInt8>) {
        // Nearly every value needs no escape at all: one check, one copy.
        if Self.anyWord(bytes, Self.needsAttention) {
            appendEscapedByteByByte(bytes)
        } else {
            append(bytes)
        }
    }

    @inline(never)
    private func appendEscapedByteByByte(_ bytes: UnsafeBufferPointer<UInt8>) {
        let count = bytes.count
        var index = 0
        var runStart = 0
        guard let start = bytes.baseAddress else { return }
        let raw = UnsafeRawPointer(start)
        while index < count {
            if index + 8 <= count, Self.needsAttention(raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)) == 0 {
                index += 8
                continue
            }
            let byte = bytes[index]
            if byte >= 0x20 && byte < 0x7F && byte != 0x22 && byte != 0x5C {
                index += 1
                continue
            }
            if byte >= 0x80, let (scalar, length) = Self.decodeScalar(bytes, at: index), !Self.isDisguising(scalar) {
                index += length
                continue
            }
            append(UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
            if byte < 0x80 {
                switch byte {
                case 0x22: append("\\\"")
                case 0x5C: append("\\\\")
                case 0x0A: append("\\n")
                case 0x0D: append("\\r")
                case 0x09: append("\\t")
                default: appendUnicodeEscape(UInt32(byte))
                }
                index += 1
            } else if let (scalar, length) = Self.decodeScalar(bytes, at: index) {
                appendUnicodeEscape(scalar)
                index += length
            } else {
                // Not UTF-8: U+FFFD, one per byte.
                append(0xEF)
                append(0xBF)
                append(0xBD)
                index += 1
            }
            runStart = index
        }
        append(UnsafeBufferPointer(rebasing: bytes[runStart..<count]))
    }

    /// `\uXXXX` (lowercase hex); only called for scalars below U+10000.
    private func appendUnicodeEscape(_ scalar: UInt32) {
        let hex: StaticString = "0123456789abcdef"
        append("\\u")
        hex.withUTF8Buffer { digits in
            for shift in stride(from: 12, through: 0, by: -4) {
                append(digits[Int((scalar >> UInt32(shift)) & 0xF)])
            }
        }
    }

    /// Scalars that can make a line look like something else: C1 controls (U+0085 is a
    /// line break to some readers), the line and paragraph separators, and the bidi
    /// controls that reorder what a terminal shows.
    static func isDisguising(_ scalar: UInt32) -> Bool {
        switch scalar {
        case 0x80...0x9F, 0x061C, 0x200E, 0x200F, 0x2028...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }

    /// The scalar starting at `index` and its length, or nil when the bytes there are not
    /// well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF).
    static func decodeScalar(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> (UInt32, Int)? {
        let lead = bytes[index]
        let remaining = bytes.count - index
        @inline(__always) func continuation(_ offset: Int, _ low: UInt8 = 0x80, _ high: UInt8 = 0xBF) -> UInt32? {
            guard offset < remaining else { return nil }
            let byte = bytes[index + offset]
            guard byte >= low && byte <= high else { return nil }
            return UInt32(byte & 0x3F)
        }
        switch lead {
        case 0xC2...0xDF:
            guard let b1 = continuation(1) else { return nil }
            return ((UInt32(lead & 0x1F) << 6) | b1, 2)
        case 0xE0...0xEF:
            let low: UInt8 = lead == 0xE0 ? 0xA0 : 0x80
            let high: UInt8 = lead == 0xED ? 0x9F : 0xBF
            guard let b1 = continuation(1, low, high), let b2 = continuation(2) else { return nil }
            return ((UInt32(lead & 0x0F) << 12) | (b1 << 6) | b2, 3)
        case 0xF0...0xF4:
            let low: UInt8 = lead == 0xF0 ? 0x90 : 0x80
            let high: UInt8 = lead == 0xF4 ? 0x8F : 0xBF
            guard let b1 = continuation(1, low, high), let b2 = continuation(2), let b3 = continuation(3) else {
                return nil
            }
            return ((UInt32(lead & 0x07) << 18) | (b1 << 12) | (b2 << 6) | b3, 4)
        default:
            return nil
        }
    }
}
