/// One entry of `allow_origin`, as written in the conf and validated at load.
package enum OriginEntry: Hashable, Sendable {
    /// `*`: every valid origin and `null`.
    case any
    /// `null`, listed by name.
    case null
    /// An exact origin, normalised.
    case exact(Origin)
    /// `scheme://*.suffix[:port]`: one or more labels before `suffix`, never `suffix` itself.
    /// `suffix` is lowercased and has no leading dot; `port` is nil for the default.
    case wildcard(scheme: String, suffix: String, port: Int?)
    /// `~REGEX`, matched against the whole normalised origin.
    case regex(String)

    /// Parses one `allow_origin` argument; the error says what to write instead.
    package static func parse(_ text: String) -> Result<OriginEntry, OriginSyntaxError> {
        if text == "*" { return .success(.any) }
        if text == "null" { return .success(.null) }
        if text.hasPrefix("~") {
            let pattern = String(text.dropFirst())
            guard !pattern.isEmpty else {
                return .failure(
                    .init(
                        "'~' must be followed by a regular expression, e.g. ~^https://pr-[0-9]+\\.preview\\.example\\.com$"
                    ))
            }
            if let problem = OriginRegex.compileProblem(pattern) {
                return .failure(.init("invalid regular expression: \(problem)"))
            }
            return .success(.regex(pattern))
        }
        guard text.contains("*") else {
            return Origin.parseDetailed(text).map { .exact($0) }
        }
        // A wildcard: only the leftmost label(s) may be `*`.
        guard let schemeEnd = text.firstRange(of: "://") else {
            return .failure(.init("a wildcard origin is scheme://*.domain, e.g. https://*.example.com"))
        }
        let afterScheme = text[schemeEnd.upperBound...]
        guard afterScheme.hasPrefix("*.") else {
            return .failure(
                .init("'*' may only stand for the leftmost label(s) of the host, e.g. https://*.example.com"))
        }
        let rest = afterScheme.dropFirst(2)
        guard !rest.contains("*") else {
            return .failure(
                .init("'*' may only stand for the leftmost label(s) of the host, e.g. https://*.example.com"))
        }
        // Validate what follows `*.` as an origin of its own.
        let candidate = String(text[..<schemeEnd.upperBound]) + String(rest)
        switch Origin.parseDetailed(candidate) {
        case .failure(let error):
            return .failure(error)
        case .success(let origin):
            if origin.host.hasPrefix("[") || origin.host.allSatisfy({ $0.isNumber || $0 == "." }) {
                return .failure(.init("a wildcard covers DNS names, not IP addresses"))
            }
            guard origin.host.split(separator: ".").count >= 2 else {
                return .failure(
                    .init(
                        "what follows '*.' must have at least two labels (e.g. https://*.example.com, not https://*.com)"
                    ))
            }
            return .success(.wildcard(scheme: origin.scheme, suffix: origin.host, port: origin.port))
        }
    }
}

extension OriginEntry: CustomStringConvertible {
    /// The entry as `check` prints it (normalised).
    package var description: String {
        switch self {
        case .any: return "*"
        case .null: return "null"
        case .exact(let origin): return origin.serialized
        case .wildcard(let scheme, let suffix, let port):
            return "\(scheme)://*.\(suffix)" + (port.map { ":\($0)" } ?? "")
        case .regex(let pattern): return "~" + pattern
        }
    }
}
