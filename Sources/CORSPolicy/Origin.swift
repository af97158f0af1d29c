import HeaderFields

/// A serialized origin (`scheme://host[:port]`) after normalisation: scheme and
/// host lowercased, the scheme's default port removed.
package struct Origin: Hashable, Sendable, CustomStringConvertible {
    package let scheme: String
    package let host: String
    /// nil when absent or the scheme's default.
    package let port: Int?
    /// The normalised text, e.g. `https://app.example.com:8443`.
    package let serialized: String

    package var description: String { serialized }

    package init(scheme: String, host: String, port: Int?) {
        self.scheme = scheme
        self.host = host
        let effectivePort = port == Origin.defaultPort(for: scheme) ? nil : port
        self.port = effectivePort
        if let effectivePort {
            self.serialized = "\(scheme)://\(host):\(effectivePort)"
        } else {
            self.serialized = "\(scheme)://\(host)"
        }
    }

    /// 80 for http, 443 for https; other schemes (e.g. `chrome-extension`) have none.
    package static func defaultPort(for scheme: String) -> Int? {
        switch scheme {
        case "http", "ws": return 80
        case "https", "wss": return 443
        default: return nil
        }
    }

    /// Parses a serialized origin as browsers send it and as the conf lists it.
    /// Returns nil for anything malformed: userinfo, path (even `/`), query,
    /// fragment, trailing dot, empty or zero-padded port, non-ASCII, `null`.
    package static func parse<S: StringProtocol>(_ text: S) -> Origin? {
        guard case .success(let origin) = parseDetailed(text) else { return nil }
        return origin
    }

    /// Like `parse`, but says what is wrong, for conf diagnostics.
    package static func parseDetailed<S: StringProtocol>(_ text: S) -> Result<Origin, OriginSyntaxError> {
        let result =
            text.utf8.withContiguousStorageIfAvailable { buffer in
                OriginScan.scan(buffer).map { $0.makeOrigin(buffer) }
            }
            ?? Array(text.utf8).withUnsafeBufferPointer { buffer in
                OriginScan.scan(buffer).map { $0.makeOrigin(buffer) }
            }
        return result
    }
}

/// Why a text is not a serialized origin, in words a user can act on.
package struct OriginSyntaxError: Error, Equatable, Sendable {
    package let message: String
    package init(_ message: String) { self.message = message }
}

// MARK: - Scanner

/// Where the parts of a valid serialized origin lie in its UTF-8 bytes. Scanning
/// does not allocate unless the text is malformed (the error message does), so
/// the per-request path can check an already-normalised `Origin` header without
/// building an `Origin`.
struct OriginScan {
    var schemeEnd: Int
    var hostStart: Int
    var hostEnd: Int
    var port: Int?
    /// The text is already in normalised form (lowercase, no default port, not IPv6).
    /// IPv6 always counts as not normalised: its canonical form is computed on parse.
    var isNormalised: Bool
    var isIPv6: Bool

    static func scan(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<OriginScan, OriginSyntaxError> {
        var index = 0
        var normalised = true

        // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
        guard index < bytes.count, isAlpha(bytes[index]) else {
            return .failure(.init("an origin starts with a scheme, e.g. https://app.example.com"))
        }
        while index < bytes.count, isSchemeChar(bytes[index]) {
            if isUpper(bytes[index]) { normalised = false }
            index += 1
        }
        let schemeEnd = index
        guard bytes.count - index >= 3, bytes[index] == UInt8(ascii: ":"), bytes[index + 1] == UInt8(ascii: "/"),
            bytes[index + 2] == UInt8(ascii: "/")
        else {
            return .failure(.init("an origin is scheme://host[:port], e.g. https://app.example.com"))
        }
        index += 3

        // Userinfo anywhere in the authority: say so, rather than complain about a port.
        var probe = index
        while probe < bytes.count, bytes[probe] != UInt8(ascii: "/"), bytes[probe] != UInt8(ascii: "?"),
            bytes[probe] != UInt8(ascii: "#")
        {
            if bytes[probe] == UInt8(ascii: "@") {
                return .failure(.init("an origin has no user name or password; remove the part before '@'"))
            }
            probe += 1
        }

        // host
        let hostStart = index
        let hostEnd: Int
        var ipv6 = false
        if index < bytes.count, bytes[index] == UInt8(ascii: "[") {
            var close = index + 1
            while close < bytes.count, bytes[close] != UInt8(ascii: "]") { close += 1 }
            guard close < bytes.count else {
                return .failure(.init("an IPv6 address in an origin is written in brackets, e.g. http://[::1]:8080"))
            }
            guard parseIPv6(bytes, from: index + 1, to: close) != nil else {
                let inner = String(decoding: UnsafeBufferPointer(rebasing: bytes[(index + 1)..<close]), as: UTF8.self)
                return .failure(.init("'\(inner)' is not an IPv6 address"))
            }
            ipv6 = true
            normalised = false
            index = close + 1
            hostEnd = index
        } else {
            while index < bytes.count, bytes[index] != UInt8(ascii: ":"), bytes[index] != UInt8(ascii: "/"),
                bytes[index] != UInt8(ascii: "?"), bytes[index] != UInt8(ascii: "#")
            {
                if isUpper(bytes[index]) { normalised = false }
                index += 1
            }
            hostEnd = index
            guard hostEnd > hostStart else {
                return .failure(.init("the origin has no host"))
            }
            if let problem = hostProblem(bytes, from: hostStart, to: hostEnd) {
                return .failure(.init(problem))
            }
        }

        // port
        var port: Int? = nil
        if index < bytes.count, bytes[index] == UInt8(ascii: ":") {
            index += 1
            let portStart = index
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            let count = index - portStart
            guard count >= 1, count <= 5 else {
                return .failure(.init("the port after ':' must be a number from 1 to 65535"))
            }
            guard bytes[portStart] != UInt8(ascii: "0") else {
                return .failure(.init("the port must be 1 to 65535 without leading zeros"))
            }
            var value = 0
            for i in portStart..<index { value = value * 10 + Int(bytes[i] &- UInt8(ascii: "0")) }
            guard value <= 65535 else {
                return .failure(.init("the port must be 1 to 65535"))
            }
            port = value
        }

        guard index == bytes.count else {
            let rest = String(decoding: UnsafeBufferPointer(rebasing: bytes[index...]), as: UTF8.self)
            if bytes[index] == UInt8(ascii: "/") {
                let origin = String(decoding: UnsafeBufferPointer(rebasing: bytes[..<index]), as: UTF8.self)
                return .failure(.init("an origin has no path, not even a trailing '/'; write \(origin)"))
            }
            return .failure(.init("unexpected '\(rest)' after the origin's host and port"))
        }
        var scan = OriginScan(
            schemeEnd: schemeEnd, hostStart: hostStart, hostEnd: hostEnd, port: port, isNormalised: normalised,
            isIPv6: ipv6)
        if let port, port == scan.defaultPort(bytes) { scan.isNormalised = false }
        return .success(scan)
    }

    /// The scheme's default port, read from the bytes without building a String.
    func defaultPort(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        let scheme = UnsafeBufferPointer(rebasing: bytes[0..<schemeEnd])
        if ASCII.equalsLowercase(scheme, "http") || ASCII.equalsLowercase(scheme, "ws") { return 80 }
        if ASCII.equalsLowercase(scheme, "https") || ASCII.equalsLowercase(scheme, "wss") { return 443 }
        return nil
    }

    func makeOrigin(_ bytes: UnsafeBufferPointer<UInt8>) -> Origin {
        let scheme = String(decoding: bytes[0..<schemeEnd].lazy.map(ASCII.lowercased), as: UTF8.self)
        let host: String
        if isIPv6, let pieces = parseIPv6(bytes, from: hostStart + 1, to: hostEnd - 1) {
            host = "[" + serializeIPv6(pieces) + "]"
        } else {
            host = String(decoding: bytes[hostStart..<hostEnd].lazy.map(ASCII.lowercased), as: UTF8.self)
        }
        return Origin(scheme: scheme, host: host, port: port)
    }
}

// MARK: - Byte classes (ASCII only: browsers send hosts in punycode)

@inline(__always) func isAlpha(_ b: UInt8) -> Bool {
    (b | 0x20) >= UInt8(ascii: "a") && (b | 0x20) <= UInt8(ascii: "z")
}
@inline(__always) func isUpper(_ b: UInt8) -> Bool { b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") }
@inline(__always) func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
@inline(__always) func isHexDigit(_ b: UInt8) -> Bool {
    isDigit(b) || ((b | 0x20) >= UInt8(ascii: "a") && (b | 0x20) <= UInt8(ascii: "f"))
}
@inline(__always) func isSchemeChar(_ b: UInt8) -> Bool {
    isAlpha(b) || isDigit(b) || b == UInt8(ascii: "+") || b == UInt8(ascii: "-") || b == UInt8(ascii: ".")
}
/// nil when `bytes[from..<to]` is a DNS name or an IPv4 address; else what is wrong.
/// Does not allocate unless it finds a problem.
func hostProblem(_ bytes: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> String? {
    func text() -> String { String(decoding: UnsafeBufferPointer(rebasing: bytes[from..<to]), as: UTF8.self) }
    if bytes[to - 1] == UInt8(ascii: ".") {
        return "an origin's host has no trailing dot"
    }
    // RFC 1035's limit. It also bounds the work a `~REGEX` does per request: a request head
    // may be 32 KiB, and a longer "origin" would only be a way to make matching expensive.
    guard to - from <= 253 else { return "a host name is at most 253 characters" }
    var labelStart = from
    var labelCount = 0
    var allNumeric = true
    var numericValid = true
    var i = from
    while i <= to {
        if i == to || bytes[i] == UInt8(ascii: ".") {
            let length = i - labelStart
            guard length > 0 else { return "the host '\(text())' has an empty label" }
            guard length <= 63 else { return "a host label is at most 63 characters" }
            labelCount += 1
            if allNumeric {
                // Only an octet's worth of digits is added up: a 63-digit label would overflow
                // an Int, and Swift traps on overflow (one request's Origin killed the proxy).
                if (1...3).contains(length) {
                    var value = 0
                    for j in labelStart..<i { value = value * 10 + Int(bytes[j] &- 48) }
                    if value > 255 { numericValid = false }
                } else {
                    numericValid = false
                }
            }
            labelStart = i + 1
        } else {
            let b = bytes[i]
            if !(isAlpha(b) || isDigit(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")) {
                if b >= 0x80 {
                    return "the host must be ASCII (write an internationalised name in punycode, xn--…)"
                }
                return "'\(Character(Unicode.Scalar(b)))' cannot appear in a host name"
            }
            if !isDigit(b) { allNumeric = false }
        }
        i += 1
    }
    // All-numeric dotted hosts must be a valid IPv4 address.
    if allNumeric, !(labelCount == 4 && numericValid) {
        return "'\(text())' is not an IPv4 address"
    }
    return nil
}

/// Parses the text between an IPv6 address's brackets into its eight 16-bit
/// pieces (RFC 4291 text form: hex groups, at most one `::`, an optional dotted
/// IPv4 tail). nil when it is not one.
func parseIPv6(_ bytes: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> [UInt16]? {
    guard to - from >= 2 else { return nil }
    var pieces: [UInt16] = []
    pieces.reserveCapacity(8)
    var compressAt: Int? = nil
    var i = from
    if bytes[i] == UInt8(ascii: ":") {
        // A leading colon must be the start of `::`.
        guard bytes[i + 1] == UInt8(ascii: ":") else { return nil }
        i += 2
        compressAt = 0
    }
    while i < to {
        var value = 0
        var digits = 0
        let groupStart = i
        while i < to, isHexDigit(bytes[i]), digits < 5 {
            let b = bytes[i]
            value = value * 16 + Int(isDigit(b) ? b - 48 : (b | 0x20) - 87)
            digits += 1
            i += 1
        }
        if i < to, bytes[i] == UInt8(ascii: ".") {
            // Dotted IPv4 tail: the last two pieces.
            guard pieces.count <= 6, hostProblem(bytes, from: groupStart, to: to) == nil else { return nil }
            var octets: [Int] = []
            var octet = 0
            for j in groupStart..<to {
                if bytes[j] == UInt8(ascii: ".") {
                    octets.append(octet)
                    octet = 0
                } else if isDigit(bytes[j]) {
                    octet = octet * 10 + Int(bytes[j] - 48)
                } else {
                    return nil
                }
            }
            octets.append(octet)
            guard octets.count == 4 else { return nil }
            pieces.append(UInt16(octets[0] << 8 | octets[1]))
            pieces.append(UInt16(octets[2] << 8 | octets[3]))
            i = to
            break
        }
        guard digits >= 1, digits <= 4 else { return nil }
        pieces.append(UInt16(value))
        guard pieces.count <= 8 else { return nil }
        if i < to {
            guard bytes[i] == UInt8(ascii: ":") else { return nil }
            i += 1
            // A single trailing colon is not allowed; `::` at the end is.
            if i == to { return nil }
            if bytes[i] == UInt8(ascii: ":") {
                guard compressAt == nil else { return nil }
                compressAt = pieces.count
                i += 1
            }
        }
    }
    if let compressAt {
        guard pieces.count < 8 else { return nil }
        pieces.insert(contentsOf: repeatElement(0, count: 8 - pieces.count), at: compressAt)
    }
    guard pieces.count == 8 else { return nil }
    return pieces
}

/// The canonical text of an IPv6 address as browsers serialize it (WHATWG URL):
/// lowercase hex without leading zeros, the first longest run of two or more
/// zero pieces written as `::`.
func serializeIPv6(_ pieces: [UInt16]) -> String {
    var bestStart = -1
    var bestLength = 1
    var runStart = -1
    for i in 0...pieces.count {
        if i < pieces.count, pieces[i] == 0 {
            if runStart < 0 { runStart = i }
        } else if runStart >= 0 {
            if i - runStart > bestLength {
                bestStart = runStart
                bestLength = i - runStart
            }
            runStart = -1
        }
    }
    var out = ""
    var i = 0
    while i < pieces.count {
        if i == bestStart {
            out += i == 0 ? "::" : ":"
            i += bestLength
            continue
        }
        out += String(pieces[i], radix: 16)
        if i < pieces.count - 1 { out += ":" }
        i += 1
    }
    return out
}
