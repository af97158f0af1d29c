import HeaderFields

/// Collects the response head from curl's header callback, one line per call.
/// Interim 1xx heads are dropped; trailers (lines after the final head) are ignored.
/// A WebSocket tunnel's parser takes `101 Switching Protocols` as final: the bytes after it
/// belong to the new protocol.
package struct ResponseHeadParser {
    package private(set) var status: Int?
    /// The status line's reason phrase (`Unprocessable Entity`); empty when none was sent
    /// or when it held bytes a reason phrase may not (they could not be passed on safely).
    package private(set) var reason = ""
    package private(set) var headers: [HeaderField] = []
    /// The final head is complete (its blank line was seen).
    package private(set) var isComplete = false
    /// `101` ends the head instead of being dropped as interim.
    private let switchingProtocolsIsFinal: Bool

    package init(switchingProtocolsIsFinal: Bool = false) {
        self.switchingProtocolsIsFinal = switchingProtocolsIsFinal
    }

    /// Feeds one header line (CRLF included or not). Returns true when it completed the final head.
    package mutating func feed(_ line: UnsafeRawBufferPointer) -> Bool {
        if isComplete { return false }
        var end = line.count
        while end > 0, line[end - 1] == UInt8(ascii: "\n") || line[end - 1] == UInt8(ascii: "\r") {
            end -= 1
        }
        let bytes = UnsafeRawBufferPointer(rebasing: line[0..<end])
        if bytes.isEmpty {
            guard let status else { return false }
            if status >= 200 || (status == 101 && switchingProtocolsIsFinal) {
                isComplete = true
                return true
            }
            // An interim head (100 Continue, 103 Early Hints): the real one follows.
            self.status = nil
            reason = ""
            headers.removeAll(keepingCapacity: true)
            return false
        }
        if bytes.starts(with: Self.httpPrefix) {
            status = Self.parseStatus(bytes)
            reason = Self.parseReason(bytes)
            headers.removeAll(keepingCapacity: true)
            // One allocation for a typical head instead of regrowing at 1, 2, 4, 8 and 16 headers.
            headers.reserveCapacity(Self.expectedHeaderCount)
            return false
        }
        if bytes[0] == UInt8(ascii: " ") || bytes[0] == UInt8(ascii: "\t") {
            // obs-fold continuation: join with one space (RFC 9112 5.2).
            if !headers.isEmpty {
                let more = Self.trimmed(bytes)
                if !more.isEmpty {
                    headers[headers.count - 1].value += " " + String(decoding: more, as: UTF8.self)
                }
            }
            return false
        }
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), colon > 0 else { return false }
        let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<colon]), as: UTF8.self)
        let value = Self.trimmed(UnsafeRawBufferPointer(rebasing: bytes[(colon + 1)...]))
        headers.append(HeaderField(name, String(decoding: value, as: UTF8.self)))
        return false
    }

    private static let httpPrefix: [UInt8] = Array("HTTP/".utf8)
    static let expectedHeaderCount = 16

    /// `HTTP/1.1 204 No Content` -> 204; nil when there are not three digits after the version.
    private static func parseStatus(_ line: UnsafeRawBufferPointer) -> Int? {
        guard let space = line.firstIndex(of: UInt8(ascii: " ")), line.count >= space + 4 else { return nil }
        var status = 0
        for i in (space + 1)...(space + 3) {
            let digit = line[i] &- UInt8(ascii: "0")
            guard digit <= 9 else { return nil }
            status = status * 10 + Int(digit)
        }
        return status
    }

    /// The text after `HTTP/1.1 NNN `: RFC 9112's `reason-phrase` is HTAB, SP, VCHAR and
    /// obs-text; anything else (a control byte) makes it empty.
    private static func parseReason(_ line: UnsafeRawBufferPointer) -> String {
        guard let space = line.firstIndex(of: UInt8(ascii: " ")), line.count > space + 5 else { return "" }
        let phrase = trimmed(UnsafeRawBufferPointer(rebasing: line[(space + 5)...]))
        for byte in phrase where byte < 0x20 && byte != 0x09 || byte == 0x7F { return "" }
        // Phrases of up to 15 bytes ("OK", "Not Found", …) are small strings: no allocation.
        return String(decoding: phrase, as: UTF8.self)
    }

    private static func trimmed(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var start = 0
        var end = bytes.count
        while start < end, bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t") { start += 1 }
        while end > start, bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\t") { end -= 1 }
        return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
    }
}
