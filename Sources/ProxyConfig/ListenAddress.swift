/// A `listen` or `admin` address.
package struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// IPv4 address, host name, or IPv6 address without brackets (as `bind` wants it).
    package var host: String
    /// 0 asks the OS for a free port (tests).
    package var port: Int
    /// `listen HOST:PORT tls`: TLS (and HTTP/2 by ALPN) with the `tls { }` block's certificate;
    /// false is cleartext HTTP/1.1.
    package var tls: Bool

    /// Creates an address; `host` is unbracketed.
    package init(host: String, port: Int, tls: Bool = false) {
        self.host = host
        self.port = port
        self.tls = tls
    }

    /// The same host and port, TLS or not: two such listeners would bind one socket.
    package func sameSocket(as other: ListenAddress) -> Bool {
        host == other.host && port == other.port
    }

    /// `0.0.0.0:8080`, `[::]:8080` (without ` tls`: this is the socket address).
    package var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Parses `HOST:PORT` / `[IPV6]:PORT`; the error says what to write instead.
    static func parse(_ text: String) -> Result<ListenAddress, ValueError> {
        let example = "write HOST:PORT, e.g. 0.0.0.0:8080, [::]:8080 or localhost:8080"
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                return .failure(ValueError("\(quoted(text)) has no closing ']'; \(example)"))
            }
            host = text[text.index(after: text.startIndex)..<close]
            guard isPlausibleIPv6(host) else {
                return .failure(ValueError("\(quoted(String(host))) is not an IPv6 address; \(example)"))
            }
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else {
                return .failure(ValueError("\(quoted(text)) has no port; \(example)"))
            }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                return .failure(ValueError("\(quoted(text)) has no port; \(example)"))
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") {
                return .failure(ValueError("write an IPv6 address in brackets, e.g. [::]:8080"))
            }
            guard isHostName(host) else {
                return .failure(ValueError("\(quoted(String(host))) is not an IP address or host name; \(example)"))
            }
        }
        guard let port = portNumber(portText, allowZero: true) else {
            return .failure(ValueError("the port must be a number from 0 to 65535, not \(quoted(String(portText)))"))
        }
        return .success(ListenAddress(host: String(host), port: port))
    }
}

/// `1`–`65535` (or `0` when allowed), digits only.
func portNumber(_ text: Substring, allowZero: Bool) -> Int? {
    guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(text) else {
        return nil
    }
    guard value <= 65535, allowZero || value >= 1 else { return nil }
    return value
}

/// A DNS name or dotted IPv4 address: ASCII letters, digits, `-`, `_`, `.`, no empty label.
func isHostName(_ host: Substring) -> Bool {
    guard !host.isEmpty, host.utf8.count <= 253 else { return false }
    let labels = host.split(separator: ".", omittingEmptySubsequences: false)
    for label in labels {
        guard !label.isEmpty, label.count <= 63 else { return false }
        guard label.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            return false
        }
    }
    if labels.allSatisfy({ $0.allSatisfy { $0.isNumber } }) {
        return labels.count == 4 && labels.allSatisfy { $0.count <= 3 && (Int($0) ?? 256) <= 255 }
    }
    return true
}

/// Hex groups and colons (and a dotted IPv4 tail); `bind` does the final check.
func isPlausibleIPv6(_ host: Substring) -> Bool {
    host.count >= 2 && host.contains(":")
        && host.allSatisfy { $0.isASCII && ($0.isHexDigit || $0 == ":" || $0 == ".") }
        && !host.contains(":::")
        && host.components(separatedBy: "::") <= 2
}

extension Substring {
    fileprivate func components(separatedBy separator: String) -> Int {
        var count = 1
        var rest = self[...]
        while let range = rest.firstRange(of: separator) {
            count += 1
            rest = rest[range.upperBound...]
        }
        return count
    }
}
