import HeaderFields
import NIOCore

/// A parsed request head. Header names and values are kept as received, in order.
package struct RequestHead: Sendable {
    package var method: String
    /// The request target, byte for byte (path and query).
    package var target: String
    package var versionMinor: Int
    package var headers: [HeaderField]
    /// The framing of the body that follows.
    package var body: BodyFraming
    /// The connection stays open after this exchange (HTTP/1.1 default, `Connection: close` ends it).
    package var keepAlive: Bool
    package var expectContinue: Bool
    /// `Connection: upgrade` together with an `Upgrade` header.
    package var isUpgrade: Bool

    /// The path before `?`.
    package var path: Substring {
        if let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) { return target[..<q] }
        return target[...]
    }

    /// `?query` including the `?`, or empty.
    package var query: Substring {
        if let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) { return target[q...] }
        return ""
    }
}

package enum BodyFraming: Sendable, Equatable {
    case none
    case length(Int64)
    case chunked
}

/// Why a request is refused before it is understood: one case per rule, so a test (or a
/// log reader) can tell which one fired. `status` is what the client gets, `detail` the words.
package enum HTTPParseError: Error, Sendable, Equatable, CaseIterable {
    // Head size
    case headTooLarge
    case trailerLineTooLarge
    // Line breaks and bytes
    case bareCR
    case bareLF
    case controlByte
    case emptyRequest
    // Request line
    case malformedRequestLine
    case invalidMethod
    case invalidTarget
    case targetNotOriginForm
    case unsupportedVersion
    // Header lines
    case obsFold
    case invalidHeaderName
    case headerWithoutColon
    case duplicateHost
    case missingHost
    // Framing
    case invalidContentLength
    case conflictingContentLength
    case contentLengthWithTransferEncoding
    case transferEncodingNotChunked
    case transferEncodingInHTTP10
    // Chunked body
    case invalidChunkSize
    case chunkSizeTooLarge
    case chunkSizeLineTooLong
    case invalidChunkExtension
    case chunkDataWithoutCRLF
    case controlByteInTrailer
    /// `next` after an earlier refusal: the connection is being closed.
    case alreadyFailed

    /// 431 when the head, or one trailer line (trailers are header fields too), is over 32 KiB; 400 otherwise.
    package var status: Int {
        switch self {
        case .headTooLarge, .trailerLineTooLarge: return 431
        default: return 400
        }
    }

    package var detail: String {
        switch self {
        case .headTooLarge: return "request head larger than 32 KiB"
        case .trailerLineTooLarge: return "trailer line larger than 32 KiB"
        case .bareCR: return "bare CR in the request head"
        case .bareLF: return "bare LF in the request head"
        case .controlByte: return "control byte in the request head"
        case .emptyRequest: return "empty request"
        case .malformedRequestLine: return "malformed request line"
        case .invalidMethod: return "malformed method"
        case .invalidTarget: return "malformed request target"
        case .targetNotOriginForm: return "request target must start with '/'"
        case .unsupportedVersion: return "unsupported HTTP version"
        case .obsFold: return "obs-fold (a header line starting with whitespace)"
        case .invalidHeaderName: return "malformed header name"
        case .headerWithoutColon: return "header line without ':'"
        case .duplicateHost: return "more than one Host header"
        case .missingHost: return "HTTP/1.1 request without Host"
        case .invalidContentLength: return "invalid Content-Length"
        case .conflictingContentLength: return "two different Content-Length values"
        case .contentLengthWithTransferEncoding: return "Content-Length together with Transfer-Encoding"
        case .transferEncodingNotChunked: return "Transfer-Encoding whose last coding is not chunked"
        case .transferEncodingInHTTP10: return "Transfer-Encoding in an HTTP/1.0 request"
        case .invalidChunkSize: return "invalid chunk size"
        case .chunkSizeTooLarge: return "chunk size too large"
        case .chunkSizeLineTooLong: return "chunk size line too long"
        case .invalidChunkExtension: return "invalid chunk extension"
        case .chunkDataWithoutCRLF: return "chunk data not followed by CRLF"
        case .controlByteInTrailer: return "control byte in a trailer"
        case .alreadyFailed: return "connection already failed"
        }
    }
}

/// A strict, incremental HTTP/1.1 request parser.
///
/// Strict on purpose (docs/DESIGN.md, "Request limits"): every ambiguity that could let a
/// second request hide inside the first on its way upstream — bare CR or LF,
/// obs-fold, control bytes, Content-Length with Transfer-Encoding, conflicting
/// lengths — is a 400, not a guess. Body parts are slices of the input buffer.
package struct HTTPRequestParser: Sendable {
    package static let maxHeadSize = 32 * 1024

    package enum Part: Sendable {
        case head(RequestHead)
        case body(ByteBuffer)
        case end
    }

    private enum State: Sendable {
        case head(scanned: Int)
        case fixed(remaining: Int64)
        case chunkSize
        case chunkData(remaining: Int64)
        case chunkDataEnd
        case trailers(scanned: Int)
        /// A Content-Length body is complete; `.end` is returned next.
        case endOfFixedBody
        case failed
    }

    private var state: State = .head(scanned: 0)

    package init() {}

    /// True between requests: nothing of the next request has been parsed yet.
    package var isAtRequestBoundary: Bool {
        if case .head(let scanned) = state { return scanned == 0 }
        return false
    }

    /// Parses the next part from `buffer`, consuming what it used. nil: more bytes needed.
    package mutating func next(_ buffer: inout ByteBuffer) throws(HTTPParseError) -> Part? {
        switch state {
        case .failed:
            throw .alreadyFailed
        case .head(let scanned):
            guard let headEnd = findHeadEnd(buffer, from: scanned) else {
                // An incomplete head that already holds a bare LF or CR can never become
                // valid: refuse it now rather than wait for a CRLFCRLF that may not come.
                if let bare = bareLineBreak(buffer, from: max(0, scanned - 1)) {
                    state = .failed
                    throw bare
                }
                if buffer.readableBytes > Self.maxHeadSize {
                    state = .failed
                    throw .headTooLarge
                }
                state = .head(scanned: max(0, buffer.readableBytes - 3))
                return nil
            }
            if headEnd > Self.maxHeadSize {
                state = .failed
                throw .headTooLarge
            }
            do {
                let head = try buffer.withUnsafeReadableBytes { bytes throws(HTTPParseError) in
                    try Self.parseHead(UnsafeRawBufferPointer(rebasing: bytes[0..<headEnd]))
                }
                buffer.moveReaderIndex(forwardBy: headEnd)
                switch head.body {
                case .none: state = .head(scanned: 0)
                case .length(let n): state = n == 0 ? .head(scanned: 0) : .fixed(remaining: n)
                case .chunked: state = .chunkSize
                }
                return .head(head)
            } catch {
                state = .failed
                throw error
            }
        case .fixed(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let n = Int(min(Int64(buffer.readableBytes), remaining))
            let slice = buffer.readSlice(length: n)!
            let left = remaining - Int64(n)
            state = left == 0 ? .endOfFixedBody : .fixed(remaining: left)
            return .body(slice)
        case .endOfFixedBody:
            state = .head(scanned: 0)
            return .end
        case .chunkSize:
            guard let lineEnd = findCRLF(buffer, from: 0, limit: 4096) else {
                if buffer.readableBytes > 4096 {
                    state = .failed
                    throw .chunkSizeLineTooLong
                }
                return nil
            }
            let size: Int64
            do {
                size = try buffer.withUnsafeReadableBytes { bytes throws(HTTPParseError) in
                    try Self.parseChunkSize(UnsafeRawBufferPointer(rebasing: bytes[0..<lineEnd]))
                }
            } catch {
                state = .failed
                throw error
            }
            buffer.moveReaderIndex(forwardBy: lineEnd + 2)
            state = size == 0 ? .trailers(scanned: 0) : .chunkData(remaining: size)
            return try next(&buffer)
        case .chunkData(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let n = Int(min(Int64(buffer.readableBytes), remaining))
            let slice = buffer.readSlice(length: n)!
            let left = remaining - Int64(n)
            state = left == 0 ? .chunkDataEnd : .chunkData(remaining: left)
            return .body(slice)
        case .chunkDataEnd:
            guard buffer.readableBytes >= 2 else { return nil }
            guard buffer.readInteger(as: UInt16.self) == 0x0D0A else {
                state = .failed
                throw .chunkDataWithoutCRLF
            }
            state = .chunkSize
            return try next(&buffer)
        case .trailers:
            // Trailers are read and dropped: `Trailer` is hop-by-hop, so they are never forwarded.
            guard let lineEnd = findCRLF(buffer, from: 0, limit: Self.maxHeadSize) else {
                if buffer.readableBytes > Self.maxHeadSize {
                    state = .failed
                    throw .trailerLineTooLarge
                }
                return nil
            }
            let line = buffer.readSlice(length: lineEnd + 2)!
            if lineEnd == 0 {
                state = .head(scanned: 0)
                return .end
            }
            let clean = line.withUnsafeReadableBytes { bytes in
                !bytes[0..<lineEnd].contains { b in b == 0x0D || b == 0x0A || (b < 0x20 && b != 0x09) || b == 0x7F }
            }
            guard clean else {
                state = .failed
                throw .controlByteInTrailer
            }
            return try next(&buffer)
        }
    }

    /// After a head with a body, true once the body's end was returned as `.end` or the length was reached.
    package var expectsBody: Bool {
        switch state {
        case .fixed, .chunkSize, .chunkData, .chunkDataEnd, .trailers, .endOfFixedBody: return true
        case .head, .failed: return false
        }
    }

    /// Best effort, for the answer to a request this parser refused: the method, target and
    /// CORS-relevant headers of the head at the start of `buffer`, read leniently (any line
    /// break, first 32 KiB), so a 400 or 431 can carry the CORS headers every proxy-made response carries
    /// (docs/DESIGN.md, "Proxy-made responses").
    /// nil when not even a request line can be made out.
    package static func salvageHead(_ buffer: ByteBuffer) -> RequestHead? {
        buffer.withUnsafeReadableBytes { bytes -> RequestHead? in
            let limit = min(bytes.count, maxHeadSize)
            var lines: [Range<Int>] = []
            var start = 0
            var i = 0
            while i < limit {
                let b = bytes[i]
                // CRLF, bare LF and bare CR all end a line here.
                if b == 0x0A || (b == 0x0D && (i + 1 >= limit || bytes[i + 1] != 0x0A)) {
                    let end = b == 0x0A && i > start && bytes[i - 1] == 0x0D ? i - 1 : i
                    if end > start {
                        lines.append(start..<end)
                    } else if !lines.isEmpty {
                        break  // the blank line: end of the head
                    }
                    start = i + 1
                }
                i += 1
            }
            if start < limit && lines.isEmpty { lines.append(start..<limit) }
            if start < limit, let last = lines.last, last.upperBound < start { lines.append(start..<limit) }
            guard let requestLine = lines.first else { return nil }
            let parts = UnsafeRawBufferPointer(rebasing: bytes[requestLine]).split(separator: 0x20)
            guard parts.count == 3, parts[1].first == UInt8(ascii: "/") else { return nil }
            var headers: [HeaderField] = []
            for line in lines.dropFirst() {
                let text = UnsafeRawBufferPointer(rebasing: bytes[line])
                guard let colon = text.firstIndex(of: UInt8(ascii: ":")) else { continue }
                let name = String(decoding: text[..<colon], as: UTF8.self)
                switch name.lowercased() {
                case "origin", "host", "access-control-request-method", "access-control-request-headers",
                    "access-control-request-private-network":
                    headers.append(
                        HeaderField(
                            name, String(String(decoding: text[(colon + 1)...], as: UTF8.self).trimmingSpaces())))
                default:
                    continue
                }
            }
            return RequestHead(
                method: String(decoding: parts[0], as: UTF8.self), target: String(decoding: parts[1], as: UTF8.self),
                versionMinor: 1, headers: headers, body: .none, keepAlive: false, expectContinue: false,
                isUpgrade: false)
        }
    }

    // MARK: - Head

    /// Index just past `\r\n\r\n`, scanning from `from`.
    private func findHeadEnd(_ buffer: ByteBuffer, from: Int) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            let count = min(bytes.count, Self.maxHeadSize + 4)
            var i = from
            while i + 3 < count {
                if bytes[i + 3] == 0x0A {
                    if bytes[i] == 0x0D && bytes[i + 1] == 0x0A && bytes[i + 2] == 0x0D { return i + 4 }
                    i += 1
                } else if bytes[i + 3] == 0x0D {
                    i += 1
                } else {
                    i += 4
                }
            }
            return nil
        }
    }

    /// `.bareLF` for a LF not preceded by CR, `.bareCR` for a CR followed by something other than LF.
    private func bareLineBreak(_ buffer: ByteBuffer, from: Int) -> HTTPParseError? {
        buffer.withUnsafeReadableBytes { bytes -> HTTPParseError? in
            let count = min(bytes.count, Self.maxHeadSize + 4)
            var i = from
            while i < count {
                let b = bytes[i]
                if b == 0x0A && (i == 0 || bytes[i - 1] != 0x0D) { return .bareLF }
                if b == 0x0D && i + 1 < count && bytes[i + 1] != 0x0A { return .bareCR }
                i += 1
            }
            return nil
        }
    }

    private func findCRLF(_ buffer: ByteBuffer, from: Int, limit: Int) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            let count = min(bytes.count, limit + 2)
            var i = from
            while i + 1 < count {
                if bytes[i] == 0x0D && bytes[i + 1] == 0x0A { return i }
                i += 1
            }
            return nil
        }
    }

    static func parseHead(_ bytes: UnsafeRawBufferPointer) throws(HTTPParseError) -> RequestHead {
        // Leading empty lines before a request line are tolerated (RFC 9112 2.2).
        var start = 0
        while start + 1 < bytes.count, bytes[start] == 0x0D, bytes[start + 1] == 0x0A { start += 2 }
        let end = bytes.count - 2  // points at the final CRLF
        guard start < end else { throw .emptyRequest }

        // Every line ends in CRLF; any other CR or LF, NUL or control byte is refused.
        var lineStart = start
        var lines: [Range<Int>] = []
        lines.reserveCapacity(16)
        var i = start
        while i < end {
            let b = bytes[i]
            if b == 0x0D {
                guard i + 1 < bytes.count, bytes[i + 1] == 0x0A else { throw .bareCR }
                lines.append(lineStart..<i)
                i += 2
                lineStart = i
                continue
            }
            if b == 0x0A { throw .bareLF }
            if (b < 0x20 && b != 0x09) || b == 0x7F { throw .controlByte }
            i += 1
        }
        guard let requestLine = lines.first else { throw .emptyRequest }

        // request-line = method SP request-target SP HTTP-version
        let rl = requestLine
        var sp1 = rl.lowerBound
        while sp1 < rl.upperBound, bytes[sp1] != 0x20 { sp1 += 1 }
        guard sp1 > rl.lowerBound, sp1 < rl.upperBound else { throw .malformedRequestLine }
        for k in rl.lowerBound..<sp1 where !isTokenByte(bytes[k]) { throw .invalidMethod }
        var sp2 = sp1 + 1
        while sp2 < rl.upperBound, bytes[sp2] != 0x20 { sp2 += 1 }
        guard sp2 > sp1 + 1, sp2 < rl.upperBound else { throw .malformedRequestLine }
        for k in (sp1 + 1)..<sp2 where bytes[k] <= 0x20 || bytes[k] >= 0x7F {
            throw .invalidTarget
        }
        guard bytes[sp1 + 1] == UInt8(ascii: "/") else {
            // Absolute-form and asterisk-form are for forward proxies and OPTIONS *; not served here.
            throw .targetNotOriginForm
        }
        let version = UnsafeRawBufferPointer(rebasing: bytes[(sp2 + 1)..<rl.upperBound])
        guard version.count == 8, version.starts(with: "HTTP/1.".utf8),
            version[7] == UInt8(ascii: "1") || version[7] == UInt8(ascii: "0")
        else { throw .unsupportedVersion }
        let minor = Int(version[7] - UInt8(ascii: "0"))

        let method = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[rl.lowerBound..<sp1]), as: UTF8.self)
        let target = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(sp1 + 1)..<sp2]), as: UTF8.self)

        var headers: [HeaderField] = []
        headers.reserveCapacity(lines.count - 1)
        var contentLength: Int64? = nil
        var transferEncodingSeen = false
        var chunkedLast = false
        var connectionClose = false
        var connectionKeepAlive = false
        var connectionUpgrade = false
        var hasUpgrade = false
        var hasHost = false
        var expectContinue = false

        for line in lines.dropFirst() {
            guard line.lowerBound < line.upperBound else { continue }
            let first = bytes[line.lowerBound]
            if first == 0x20 || first == 0x09 { throw .obsFold }
            var colon = line.lowerBound
            while colon < line.upperBound, bytes[colon] != UInt8(ascii: ":") {
                guard isTokenByte(bytes[colon]) else { throw .invalidHeaderName }
                colon += 1
            }
            guard colon < line.upperBound, colon > line.lowerBound else { throw .headerWithoutColon }
            var vs = colon + 1
            var ve = line.upperBound
            while vs < ve, bytes[vs] == 0x20 || bytes[vs] == 0x09 { vs += 1 }
            while ve > vs, bytes[ve - 1] == 0x20 || bytes[ve - 1] == 0x09 { ve -= 1 }
            let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[line.lowerBound..<colon])
            let valueBytes = UnsafeRawBufferPointer(rebasing: bytes[vs..<ve])
            let name = KnownHeaderNames.string(nameBytes)
            let value = String(decoding: valueBytes, as: UTF8.self)

            switch nameBytes.count {
            case 4 where ASCII.equalsLowercase(nameBytes, "host"):
                if hasHost { throw .duplicateHost }
                hasHost = true
            case 6 where ASCII.equalsLowercase(nameBytes, "expect"):
                if ASCII.equalsLowercase(valueBytes, "100-continue") { expectContinue = true }
            case 7 where ASCII.equalsLowercase(nameBytes, "upgrade"):
                hasUpgrade = true
            case 10 where ASCII.equalsLowercase(nameBytes, "connection"):
                forEachListItem(valueBytes) { item in
                    if ASCII.equalsLowercase(item, "close") {
                        connectionClose = true
                    } else if ASCII.equalsLowercase(item, "keep-alive") {
                        connectionKeepAlive = true
                    } else if ASCII.equalsLowercase(item, "upgrade") {
                        connectionUpgrade = true
                    }
                }
            case 14 where ASCII.equalsLowercase(nameBytes, "content-length"):
                var sawItem = false
                var failure: HTTPParseError? = nil
                forEachListItem(valueBytes) { item in
                    sawItem = true
                    guard let n = parseDecimal(item) else {
                        failure = .invalidContentLength
                        return
                    }
                    if let previous = contentLength, previous != n {
                        failure = .conflictingContentLength
                    }
                    contentLength = n
                }
                if let failure { throw failure }
                if !sawItem { throw .invalidContentLength }
            case 17 where ASCII.equalsLowercase(nameBytes, "transfer-encoding"):
                transferEncodingSeen = true
                forEachListItem(valueBytes) { item in chunkedLast = ASCII.equalsLowercase(item, "chunked") }
            default:
                break
            }
            headers.append(HeaderField(name, value))
        }

        if transferEncodingSeen && contentLength != nil {
            throw .contentLengthWithTransferEncoding
        }
        if transferEncodingSeen && !chunkedLast {
            throw .transferEncodingNotChunked
        }
        if transferEncodingSeen && minor == 0 {
            throw .transferEncodingInHTTP10
        }
        if minor == 1 && !hasHost { throw .missingHost }

        let framing: BodyFraming = transferEncodingSeen ? .chunked : (contentLength.map { .length($0) } ?? .none)
        let keepAlive = minor == 1 ? !connectionClose : (connectionKeepAlive && !connectionClose)
        return RequestHead(
            method: method, target: target, versionMinor: minor, headers: headers, body: framing,
            keepAlive: keepAlive, expectContinue: expectContinue && minor == 1,
            isUpgrade: connectionUpgrade && hasUpgrade)
    }

    static func parseChunkSize(_ bytes: UnsafeRawBufferPointer) throws(HTTPParseError) -> Int64 {
        var i = 0
        var size: Int64 = 0
        var digits = 0
        while i < bytes.count, let d = hexValue(bytes[i]) {
            guard digits < 15 else { throw .chunkSizeTooLarge }
            size = size << 4 | Int64(d)
            digits += 1
            i += 1
        }
        guard digits > 0 else { throw .invalidChunkSize }
        // chunk-ext = *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 }
        if i < bytes.count {
            guard bytes[i] == UInt8(ascii: ";") else { throw .invalidChunkSize }
            for k in i..<bytes.count {
                let b = bytes[k]
                guard b == 0x09 || (b >= 0x20 && b != 0x7F) else { throw .invalidChunkExtension }
            }
        }
        return size
    }
}

// MARK: - Byte helpers

@inline(__always) func isTokenByte(_ b: UInt8) -> Bool {
    switch b {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"):
        return true
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
        UInt8(ascii: "'"),
        UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"),
        UInt8(ascii: "_"),
        UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
        return true
    default:
        return false
    }
}

@inline(__always) func hexValue(_ b: UInt8) -> UInt8? {
    switch b {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
    default: return nil
    }
}

/// Calls `body` with each comma-separated item, trimmed of whitespace, empty items skipped.
@inline(__always) func forEachListItem(_ bytes: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
    var start = 0
    while start <= bytes.count {
        var end = start
        while end < bytes.count, bytes[end] != UInt8(ascii: ",") { end += 1 }
        var s = start
        var e = end
        while s < e, bytes[s] == 0x20 || bytes[s] == 0x09 { s += 1 }
        while e > s, bytes[e - 1] == 0x20 || bytes[e - 1] == 0x09 { e -= 1 }
        if s < e { body(UnsafeRawBufferPointer(rebasing: bytes[s..<e])) }
        start = end + 1
    }
}

/// A non-negative decimal without sign; nil when invalid or over 2^62.
@inline(__always) func parseDecimal(_ bytes: UnsafeRawBufferPointer) -> Int64? {
    guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
    var n: Int64 = 0
    for b in bytes {
        guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
        n = n * 10 + Int64(b - UInt8(ascii: "0"))
    }
    return n
}
