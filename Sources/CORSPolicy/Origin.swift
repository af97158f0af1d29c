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
        let bytes = Array(text.utf8)
        var index = 0

        // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
        guard index < bytes.count, isAlpha(bytes[index]) else {
            return .failure(.init("an origin starts with a scheme, e.g. https://app.example.com"))
        }
        while index < bytes.count, isSchemeChar(bytes[index]) { index += 1 }
        let schemeEnd = index
        guard bytes.count - index >= 3, bytes[index] == UInt8(ascii: ":"), bytes[index + 1] == UInt8(ascii: "/"),
            bytes[index + 2] == UInt8(ascii: "/")
        else {
            return .failure(.init("an origin is scheme://host[:port], e.g. https://app.example.com"))
        }
        let scheme = String(decoding: bytes[0..<schemeEnd].map(lowercased), as: UTF8.self)
        index += 3

        // host
        let hostStart = index
        var host: String
        if index < bytes.count, bytes[index] == UInt8(ascii: "[") {
            guard let close = bytes[index...].firstIndex(of: UInt8(ascii: "]")) else {
                return .failure(.init("an IPv6 address in an origin is written in brackets, e.g. http://[::1]:8080"))
            }
            let inner = bytes[(index + 1)..<close]
            guard isIPv6(inner) else {
                return .failure(.init("'\(String(decoding: inner, as: UTF8.self))' is not an IPv6 address"))
            }
            host = "[" + String(decoding: inner.map(lowercased), as: UTF8.self) + "]"
            index = close + 1
        } else {
            while index < bytes.count, bytes[index] != UInt8(ascii: ":"), bytes[index] != UInt8(ascii: "/"),
                bytes[index] != UInt8(ascii: "?"), bytes[index] != UInt8(ascii: "#"), bytes[index] != UInt8(ascii: "@")
            {
                index += 1
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "@") {
                return .failure(.init("an origin has no user name or password; remove the part before '@'"))
            }
            let hostBytes = bytes[hostStart..<index]
            guard !hostBytes.isEmpty else {
                return .failure(.init("the origin has no host"))
            }
            if let problem = hostProblem(hostBytes) {
                return .failure(.init(problem))
            }
            host = String(decoding: hostBytes.map(lowercased), as: UTF8.self)
        }

        // port
        var port: Int? = nil
        if index < bytes.count, bytes[index] == UInt8(ascii: ":") {
            index += 1
            let portStart = index
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            let digits = bytes[portStart..<index]
            guard !digits.isEmpty, digits.count <= 5 else {
                return .failure(.init("the port after ':' must be a number from 1 to 65535"))
            }
            guard digits.first != UInt8(ascii: "0") else {
                return .failure(.init("the port must be 1 to 65535 without leading zeros"))
            }
            let value = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            guard value >= 1, value <= 65535 else {
                return .failure(.init("the port must be 1 to 65535"))
            }
            port = value
        }

        guard index == bytes.count else {
            let rest = bytes[index]
            if rest == UInt8(ascii: "/") {
                return .failure(.init("an origin has no path, not even a trailing '/'; write \(scheme)://\(host)\(port.map { ":\($0)" } ?? "")"))
            }
            return .failure(.init("unexpected '\(String(decoding: bytes[index...], as: UTF8.self))' after the origin's host and port"))
        }
        return .success(Origin(scheme: scheme, host: host, port: port))
    }
}

/// Why a text is not a serialized origin, in words a user can act on.
package struct OriginSyntaxError: Error, Equatable, Sendable {
    package let message: String
    package init(_ message: String) { self.message = message }
}

// MARK: - Byte classes (ASCII only: browsers send hosts in punycode)

@inline(__always) func isAlpha(_ b: UInt8) -> Bool { (b | 0x20) >= UInt8(ascii: "a") && (b | 0x20) <= UInt8(ascii: "z") }
@inline(__always) func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
@inline(__always) func isHexDigit(_ b: UInt8) -> Bool {
    isDigit(b) || ((b | 0x20) >= UInt8(ascii: "a") && (b | 0x20) <= UInt8(ascii: "f"))
}
@inline(__always) func isSchemeChar(_ b: UInt8) -> Bool {
    isAlpha(b) || isDigit(b) || b == UInt8(ascii: "+") || b == UInt8(ascii: "-") || b == UInt8(ascii: ".")
}
@inline(__always) func lowercased(_ b: UInt8) -> UInt8 {
    b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") ? b | 0x20 : b
}

/// nil when `host` is a DNS name or an IPv4 address; else what is wrong.
func hostProblem(_ host: ArraySlice<UInt8>) -> String? {
    if host.last == UInt8(ascii: ".") {
        return "an origin's host has no trailing dot"
    }
    let labels = host.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
    for label in labels {
        guard !label.isEmpty else { return "the host '\(String(decoding: host, as: UTF8.self))' has an empty label" }
        guard label.count <= 63 else { return "a host label is at most 63 characters" }
        for b in label where !(isAlpha(b) || isDigit(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")) {
            if b >= 0x80 {
                return "the host must be ASCII (write an internationalised name in punycode, xn--…)"
            }
            return "'\(Character(Unicode.Scalar(b)))' cannot appear in a host name"
        }
    }
    // All-numeric dotted hosts must be a valid IPv4 address.
    if labels.allSatisfy({ $0.allSatisfy(isDigit) }) {
        guard labels.count == 4, labels.allSatisfy({ $0.count <= 3 && (Int(String(decoding: $0, as: UTF8.self)) ?? 256) <= 255 })
        else {
            return "'\(String(decoding: host, as: UTF8.self))' is not an IPv4 address"
        }
    }
    return nil
}

/// A permissive but strict-enough IPv6 check: hex groups, at most one `::`,
/// an optional dotted IPv4 tail.
func isIPv6(_ text: ArraySlice<UInt8>) -> Bool {
    guard text.count >= 2, text.allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") })
    else { return false }
    let string = String(decoding: text, as: UTF8.self)
    let doubleColons = string.components(separatedByDoubleColon: ())
    guard doubleColons <= 1 else { return false }
    var groups = string.split(separator: ":", omittingEmptySubsequences: true)
    var groupBudget = 8
    if let last = groups.last, last.contains(".") {
        guard hostProblem(ArraySlice(last.utf8)) == nil, last.split(separator: ".").count == 4,
            last.allSatisfy({ $0 == "." || $0.isASCII && $0.isNumber })
        else { return false }
        groups.removeLast()
        groupBudget = 6
    }
    guard groups.allSatisfy({ $0.count >= 1 && $0.count <= 4 && !$0.contains(".") }) else { return false }
    if doubleColons == 1 {
        return groups.count < groupBudget
    }
    // Without `::` no group may be empty.
    guard !string.hasPrefix(":"), !string.hasSuffix(":"), !string.contains(":::") else { return false }
    return groups.count == groupBudget
}

extension String {
    fileprivate func components(separatedByDoubleColon _: Void) -> Int {
        var count = 0
        var previousColon = false
        var run = 0
        for c in self.utf8 {
            if c == UInt8(ascii: ":") {
                run += 1
                if previousColon && run == 2 { count += 1 }
                if run > 2 { return 99 }
                previousColon = true
            } else {
                previousColon = false
                run = 0
            }
        }
        return count
    }
}
