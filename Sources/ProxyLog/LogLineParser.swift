/// A line of cors-proxy's own log, read back (by `cors-proxy suggest` and the tests).
package struct ParsedLogLine: Sendable, Equatable {
    package var time: String
    package var level: String
    package var event: String
    /// Every other field by key, values unescaped (numbers as written).
    package var fields: [String: String]

    package init(time: String, level: String, event: String, fields: [String: String]) {
        self.time = time
        self.level = level
        self.event = event
        self.fields = fields
    }

    package subscript(_ key: String) -> String? { fields[key] }
}

/// Reads either format back: a line starting with `{` as JSON, anything else as text.
/// Returns nil for a line that is not one of cors-proxy's (another program's output, a
/// truncated line): the caller counts those.
package enum LogLineParser {
    private static let levels: Set<String> = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    package static func parse<S: StringProtocol>(_ line: S) -> ParsedLogLine? {
        var bytes = Array(line.utf8)
        while let last = bytes.last, last == UInt8(ascii: "\r") || last == UInt8(ascii: "\n") { bytes.removeLast() }
        return bytes.withUnsafeBufferPointer { buffer in
            guard let first = buffer.first else { return nil }
            var reader = Reader(bytes: buffer)
            return first == UInt8(ascii: "{") ? reader.json() : reader.text()
        }
    }

    /// `2026-12-06T01:23:07.123Z`: the shape of the timestamps cors-proxy writes (RFC 3339, UTC).
    static func isTimestamp(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.last == UInt8(ascii: "Z") else { return false }
        let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
        return digits.allSatisfy { bytes[$0] >= UInt8(ascii: "0") && bytes[$0] <= UInt8(ascii: "9") }
            && bytes[4] == UInt8(ascii: "-") && bytes[7] == UInt8(ascii: "-") && bytes[10] == UInt8(ascii: "T")
            && bytes[13] == UInt8(ascii: ":") && bytes[16] == UInt8(ascii: ":")
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        var atEnd: Bool { index >= bytes.count }
        var current: UInt8 { bytes[index] }

        mutating func skipSpaces() {
            while !atEnd && (current == UInt8(ascii: " ") || current == UInt8(ascii: "\t")) { index += 1 }
        }

        // MARK: text

        mutating func text() -> ParsedLogLine? {
            guard let time = word(), LogLineParser.isTimestamp(time) else { return nil }
            skipSpaces()
            guard let level = word(), LogLineParser.levels.contains(level) else { return nil }
            skipSpaces()
            guard let event = word(), !event.isEmpty, event.utf8.allSatisfy(LineBuffer.isKeyByte) else { return nil }
            var fields: [String: String] = [:]
            while true {
                skipSpaces()
                if atEnd { break }
                let keyStart = index
                while !atEnd && LineBuffer.isKeyByte(current) { index += 1 }
                guard index > keyStart, !atEnd, current == UInt8(ascii: "=") else { return nil }
                let key = String(decoding: UnsafeBufferPointer(rebasing: bytes[keyStart..<index]), as: UTF8.self)
                index += 1
                let value: String
                if !atEnd && current == UInt8(ascii: "\"") {
                    guard let quoted = quotedString(allowSurrogatePairs: false) else { return nil }
                    value = quoted
                } else {
                    value = word() ?? ""
                }
                guard atEnd || current == UInt8(ascii: " ") else { return nil }
                fields[key] = value
            }
            return ParsedLogLine(time: time, level: level, event: event, fields: fields)
        }

        /// Bytes up to the next space or the end.
        mutating func word() -> String? {
            let start = index
            while !atEnd && current != UInt8(ascii: " ") { index += 1 }
            guard index > start else { return nil }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        }

        /// A `"…"` string with the escapes both formats use; `index` is at the opening quote.
        mutating func quotedString(allowSurrogatePairs: Bool) -> String? {
            index += 1
            var out: [UInt8] = []
            while !atEnd {
                let byte = current
                index += 1
                if byte == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
                guard byte == UInt8(ascii: "\\") else {
                    out.append(byte)
                    continue
                }
                guard !atEnd else { return nil }
                let escape = current
                index += 1
                switch escape {
                case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "/"): out.append(UInt8(ascii: "/"))
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    guard var scalar = hex4() else { return nil }
                    if allowSurrogatePairs, scalar >= 0xD800 && scalar < 0xDC00, index + 1 < bytes.count,
                        bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                    {
                        index += 2
                        guard let low = hex4(), low >= 0xDC00 && low < 0xE000 else { return nil }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    out.append(contentsOf: String(Unicode.Scalar(scalar) ?? "\u{FFFD}").utf8)
                default:
                    return nil
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard index + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = current
                index += 1
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: return nil
                }
                value = value << 4 | digit
            }
            return value
        }

        // MARK: JSON

        /// A flat object (cors-proxy's lines never nest): string, number, `true`, `false`
        /// and `null` values.
        mutating func json() -> ParsedLogLine? {
            index += 1
            var fields: [String: String] = [:]
            skipSpaces()
            if !atEnd && current == UInt8(ascii: "}") {
                index += 1
            } else {
                while true {
                    skipSpaces()
                    guard !atEnd, current == UInt8(ascii: "\""), let key = quotedString(allowSurrogatePairs: true)
                    else { return nil }
                    skipSpaces()
                    guard !atEnd, current == UInt8(ascii: ":") else { return nil }
                    index += 1
                    skipSpaces()
                    guard !atEnd else { return nil }
                    if current == UInt8(ascii: "\"") {
                        guard let value = quotedString(allowSurrogatePairs: true) else { return nil }
                        fields[key] = value
                    } else {
                        let start = index
                        while !atEnd, current != UInt8(ascii: ","), current != UInt8(ascii: "}"),
                            current != UInt8(ascii: " ")
                        {
                            guard current != UInt8(ascii: "{") && current != UInt8(ascii: "[") else { return nil }
                            index += 1
                        }
                        guard index > start else { return nil }
                        fields[key] = String(
                            decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                    }
                    skipSpaces()
                    guard !atEnd else { return nil }
                    if current == UInt8(ascii: ",") {
                        index += 1
                        continue
                    }
                    guard current == UInt8(ascii: "}") else { return nil }
                    index += 1
                    break
                }
            }
            skipSpaces()
            guard atEnd else { return nil }
            guard let time = fields.removeValue(forKey: "time"), LogLineParser.isTimestamp(time),
                let level = fields.removeValue(forKey: "level"), LogLineParser.levels.contains(level),
                let event = fields.removeValue(forKey: "event"), !event.isEmpty
            else { return nil }
            return ParsedLogLine(time: time, level: level, event: event, fields: fields)
        }
    }
}
