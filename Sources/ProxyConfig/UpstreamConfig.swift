import CORSPolicy

/// A named upstream: where requests are forwarded and how long to wait.
package struct UpstreamConfig: Sendable, Hashable {
    /// The name routes refer to.
    package var name: String
    /// `http` or `https`.
    package var scheme: Scheme
    /// Lowercased host; an IPv6 address keeps its brackets (`[::1]`), as in a URL.
    package var host: String
    /// The explicit port, or the scheme's default (80/443).
    package var port: Int
    /// The URL's path without a trailing `/`; empty for none.
    package var basePath: String
    /// `connect_timeout`, default 5s.
    package var connectTimeoutMilliseconds: Int64 = 5000
    /// `timeout`: no byte from the upstream for this long; default 60s.
    package var timeoutMilliseconds: Int64 = 60_000
    /// `ca_file`, `tls_verify`, `client_certificate`, `client_key`; nil for `http://`.
    package var tls: UpstreamTLSSettings?

    /// Creates an upstream with the default timeouts (and, for `https`, the default TLS settings).
    package init(name: String, scheme: Scheme, host: String, port: Int, basePath: String) {
        self.name = name
        self.scheme = scheme
        self.host = host
        self.port = port
        self.basePath = basePath
        self.tls = scheme == .https ? UpstreamTLSSettings() : nil
    }

    /// `host[:port]`, the port omitted when it is the scheme's default: the `Host` header sent upstream.
    package var authority: String {
        port == (scheme == .https ? 443 : 80) ? host : "\(host):\(port)"
    }

    /// `scheme://authority` + base path: prepend to `Route.forwardPath(path:)`, then append `?query`.
    package var urlPrefix: String { "\(scheme.rawValue)://\(authority)\(basePath)" }

    /// Parses an upstream URL (http/https, a host, optional port and path; no
    /// userinfo, query or fragment).
    static func parse(name: String, url text: String) -> Result<UpstreamConfig, ValueError> {
        let example = "e.g. http://127.0.0.1:3000 or https://api.internal:8443/v1"
        guard let separator = text.firstRange(of: "://") else {
            return .failure(ValueError("\(quoted(text)) is not a URL; write http://HOST[:PORT][/PATH], \(example)"))
        }
        let scheme: Scheme
        switch text[..<separator.lowerBound].lowercased() {
        case "http": scheme = .http
        case "https": scheme = .https
        default:
            return .failure(ValueError("an upstream URL starts with http:// or https://, \(example)"))
        }
        let rest = text[separator.upperBound...]
        if rest.contains("?") || rest.contains("#") {
            return .failure(
                ValueError(
                    "an upstream URL has no query or fragment (the request's query is appended); remove what follows '?' or '#'"
                ))
        }
        if rest.contains(where: { $0.isWhitespace || ($0.asciiValue ?? 0x20) < 0x20 }) {
            return .failure(ValueError("an upstream URL contains no whitespace or control characters"))
        }
        let pathStart = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<pathStart]
        if authority.contains("@") {
            return .failure(ValueError("an upstream URL has no user name or password; remove the part before '@'"))
        }
        guard !authority.isEmpty else {
            return .failure(ValueError("the upstream URL has no host, \(example)"))
        }
        var host: Substring
        var portText: Substring? = nil
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]"),
                isPlausibleIPv6(authority[authority.index(after: authority.startIndex)..<close])
            else {
                return .failure(
                    ValueError("\(quoted(String(authority))) is not a bracketed IPv6 address, e.g. http://[::1]:3000"))
            }
            host = authority[...close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else {
                    return .failure(ValueError("unexpected \(quoted(String(after))) after the IPv6 address"))
                }
                portText = after.dropFirst()
            }
        } else {
            if let colon = authority.firstIndex(of: ":") {
                host = authority[..<colon]
                portText = authority[authority.index(after: colon)...]
            } else {
                host = authority
            }
            guard !host.isEmpty else {
                return .failure(ValueError("the upstream URL has no host, \(example)"))
            }
            guard isHostName(host) else {
                return .failure(ValueError("\(quoted(String(host))) is not a host name or IP address"))
            }
        }
        var port = scheme == .https ? 443 : 80
        if let portText {
            guard let value = portNumber(portText, allowZero: false) else {
                return .failure(
                    ValueError("the upstream port must be a number from 1 to 65535, not \(quoted(String(portText)))"))
            }
            port = value
        }
        var path = rest[pathStart...]
        // docs/CONFIG.md §5, "Forwarded URL": the base path without a trailing '/'.
        while path.hasSuffix("/") { path = path.dropLast() }
        return .success(
            UpstreamConfig(name: name, scheme: scheme, host: host.lowercased(), port: port, basePath: String(path)))
    }
}
