import NIOCore
import NIOHTTP1

/// Minimal JSON rendering straight into a `ByteBuffer` (no Foundation).
extension ByteBuffer {
    /// Writes `string` as a JSON string literal, quotes included. `"` and `\` are
    /// backslash-escaped, control characters below U+0020 use the short escapes
    /// (`\b \f \n \r \t`) or `\u00XX`; everything else (including non-ASCII UTF-8) is copied as is.
    mutating func writeJSONString<S: StringProtocol>(_ string: S) {
        self.writeInteger(UInt8(ascii: "\""))
        var copy = String(string)
        copy.withUTF8 { utf8 in
            var runStart = 0
            var i = 0
            let n = utf8.count
            while i < n {
                let c = utf8[i]
                if c >= 0x20 && c != UInt8(ascii: "\"") && c != UInt8(ascii: "\\") {
                    i += 1
                    continue
                }
                if runStart < i {
                    self.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: utf8[runStart..<i])))
                }
                self.writeJSONEscape(c)
                i += 1
                runStart = i
            }
            if runStart < n {
                self.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: utf8[runStart..<n])))
            }
        }
        self.writeInteger(UInt8(ascii: "\""))
    }

    private mutating func writeJSONEscape(_ c: UInt8) {
        switch c {
        case UInt8(ascii: "\""): self.writeStaticString("\\\"")
        case UInt8(ascii: "\\"): self.writeStaticString("\\\\")
        case 0x08: self.writeStaticString("\\b")
        case 0x0C: self.writeStaticString("\\f")
        case 0x0A: self.writeStaticString("\\n")
        case 0x0D: self.writeStaticString("\\r")
        case 0x09: self.writeStaticString("\\t")
        default:
            let hex: StaticString = "0123456789abcdef"
            self.writeStaticString("\\u00")
            hex.withUTF8Buffer { digits in
                self.writeInteger(digits[Int(c >> 4)])
                self.writeInteger(digits[Int(c & 0x0F)])
            }
        }
    }

    /// Writes `value` as a JSON string, or `null` when it is nil.
    mutating func writeJSONStringOrNull(_ value: String?) {
        if let value {
            self.writeJSONString(value)
        } else {
            self.writeStaticString("null")
        }
    }

    mutating func writeJSONNumber<I: BinaryInteger>(_ value: I) {
        self.writeString(String(value))
    }

    /// `[["Name","value"],…]` in the order received, repeated names kept.
    mutating func writeJSONHeaderList(_ headers: HTTPHeaders) {
        self.writeInteger(UInt8(ascii: "["))
        var first = true
        for (name, value) in headers {
            if !first { self.writeInteger(UInt8(ascii: ",")) }
            first = false
            self.writeInteger(UInt8(ascii: "["))
            self.writeJSONString(name)
            self.writeInteger(UInt8(ascii: ","))
            self.writeJSONString(value)
            self.writeInteger(UInt8(ascii: "]"))
        }
        self.writeInteger(UInt8(ascii: "]"))
    }
}
