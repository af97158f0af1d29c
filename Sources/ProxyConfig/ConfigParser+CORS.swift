import CORSPolicy

extension ConfigParser {
    /// One CORS directive, in `cors {}` or a route, into `layer`.
    mutating func handleCORSDirective(_ statement: Statement, layer: inout CORSLayer) {
        guard refuseBlock(statement) else { return }
        let name = statement.directive
        layer.directives.append((name, statement.name.location))
        switch name {
        case "allow_origin":
            guard atLeastOne(statement, usage: "allow_origin https://app.example.com") else { return }
            // Repeated lines in one block add up (long lists); the first one in
            // a route replaces the inherited list (docs/CONFIG.md §7).
            var spec = layer.lists.removeValue(forKey: .allowOrigin) ?? ListSpec()
            for token in statement.arguments where !token.poisoned {
                switch OriginEntry.parse(token.text) {
                case .failure(let error):
                    sink.error(
                        "invalid origin \(quoted(token.text)) in allow_origin: \(error.message)", at: token.location)
                case .success(let entry):
                    if entry == .any, spec.star == nil { spec.star = token.location }
                    spec.origins.append((entry, token.location))
                    warnAboutOriginEntry(entry, at: token.location)
                }
            }
            layer.lists[.allowOrigin] = spec
        case "allow_methods", "allow_headers", "expose_headers":
            let field = ListField(rawValue: name) ?? .allowMethods
            let isMethod = field == .allowMethods
            guard atLeastOne(statement, usage: isMethod ? "\(name) GET POST" : "\(name) Content-Type") else { return }
            var spec = layer.lists.removeValue(forKey: field) ?? ListSpec()
            for token in statement.arguments where !token.poisoned {
                if token.text == "*" {
                    if spec.star == nil { spec.star = token.location }
                    continue
                }
                guard isToken(token.text) else {
                    let what =
                        isMethod
                        ? "a method name (a token such as GET or PATCH)"
                        : "a header name (a token such as X-Request-Id)"
                    sink.error("\(quoted(token.text)) in \(name) is not \(what)", at: token.location)
                    continue
                }
                // Methods are case-sensitive; header names are compared case-insensitively.
                let key = isMethod ? token.text : token.text.lowercased()
                if spec.seenItems.insert(key).inserted { spec.items.append(token.text) }
            }
            layer.lists[field] = spec
        case "allow_credentials":
            guard once(statement, in: &layer.seen), arity(statement, 1, usage: "allow_credentials on") else { return }
            let token = statement.arguments[0]
            if let on = value(Units.onOff(token.text, directive: name), token) {
                layer.credentials = (on, statement.name.location)
            }
        case "max_age":
            guard once(statement, in: &layer.seen), arity(statement, 1, usage: "max_age 10m") else { return }
            let token = statement.arguments[0]
            guard let milliseconds = value(Units.milliseconds(token.text), token) else { return }
            if milliseconds > 7_200_000 {
                sink.warning(
                    "max_age \(token.text) is above 7200s (2h), Chromium's cap: browsers will cache the preflight for 2h at most; write max_age 2h or less",
                    at: token.location)
            }
            layer.maxAgeMilliseconds = milliseconds
        case "allow_private_network":
            guard once(statement, in: &layer.seen), arity(statement, 1, usage: "allow_private_network on") else {
                return
            }
            layer.allowPrivateNetwork = value(
                Units.onOff(statement.arguments[0].text, directive: name), statement.arguments[0])
        case "enforce":
            guard once(statement, in: &layer.seen), arity(statement, 1, usage: "enforce on") else { return }
            let token = statement.arguments[0]
            if let mode = Enforcement(rawValue: token.text) {
                layer.enforce = mode
            } else if !token.poisoned {
                sink.error("enforce takes on, report or off, not \(quoted(token.text))", at: token.location)
            }
        case "preflight_status":
            guard once(statement, in: &layer.seen), arity(statement, 1, usage: "preflight_status 204") else { return }
            let token = statement.arguments[0]
            switch token.text {
            case "204": layer.preflightStatus = 204
            case "200": layer.preflightStatus = 200
            default:
                if !token.poisoned {
                    sink.error("preflight_status takes 204 or 200, not \(quoted(token.text))", at: token.location)
                }
            }
        case "websocket":
            guard once(statement, in: &layer.seen), arity(statement, 1, usage: "websocket off") else { return }
            let token = statement.arguments[0]
            if let on = value(Units.onOff(token.text, directive: name), token) {
                layer.websocket = (on, statement.name.location)
            }
        default:
            break
        }
    }

    /// Checks that need the whole block: `*` beside other origins.
    mutating func finishCORSLayer(_ layer: CORSLayer) {
        if let spec = layer.lists[.allowOrigin], let star = spec.star,
            spec.origins.contains(where: { $0.entry != .any })
        {
            sink.warning(
                "'*' in allow_origin allows every origin, so the other entries are redundant; remove them or the '*'",
                at: star)
        }
    }

    /// The effective settings of the `cors {}` block or of a route, with the
    /// credential conflicts refused and credential risks warned about.
    ///
    /// Where a `*`-with-credentials error points (docs/CONFIG.md §9, "CORS directives"): at the
    /// `*` when the block being checked wrote the `*` list itself (or when
    /// checking `cors {}`); at the route's own `allow_credentials` when the
    /// route turned credentials on over a `*` inherited from `cors {}`. When a
    /// route wrote neither, the conflict is `cors {}`'s own and reported there
    /// once. So the error always points at a token of the block that caused it.
    mutating func effectiveSettings(route: CORSLayer?) -> CORSSettings {
        var settings = CORSSettings()
        defaultCORS.apply(to: &settings)
        route?.apply(to: &settings)
        guard settings.allowCredentials else { return settings }
        for field in ListField.allCases {
            let ownSpec = route?.lists[field]
            guard let spec = ownSpec ?? defaultCORS.lists[field], let star = spec.star else { continue }
            if route == nil || ownSpec != nil {
                sink.error(
                    "'*' in \(field.rawValue) cannot be used with allow_credentials on; \(field.listInstead)", at: star)
            } else if let credentials = route?.credentials {
                sink.error(
                    "allow_credentials on cannot be used with '*' in \(field.rawValue) inherited from cors { } (line \(star.line)); \(field.listInstead) in this route, or turn credentials off",
                    at: credentials.location)
            }
        }
        let origins = route?.lists[.allowOrigin] ?? defaultCORS.lists[.allowOrigin]
        for (entry, location) in origins?.origins ?? [] {
            warnAboutCredentialedOrigin(entry, at: location)
        }
        return settings
    }

    private mutating func warnAboutCredentialedOrigin(_ entry: OriginEntry, at location: SourceLocation) {
        switch entry {
        case .null:
            sink.warning(
                "'null' in allow_origin with allow_credentials on lets sandboxed iframes and local files make credentialed requests; remove null or turn credentials off",
                at: location)
        case .exact(let origin) where origin.scheme == "http" && !isLocalHost(origin.host):
            sink.warning(
                "\(origin.serialized) is plain http: with allow_credentials on, anyone on the network path can act as that origin; use https://",
                at: location)
        case .wildcard(let scheme, let suffix, _) where scheme == "http" && !isLocalHost(suffix):
            sink.warning(
                "http://*.\(suffix) is plain http: with allow_credentials on, anyone on the network path can act as those origins; use https://",
                at: location)
        default:
            break
        }
    }

    /// Warnings about one `allow_origin` entry on its own.
    private mutating func warnAboutOriginEntry(_ entry: OriginEntry, at location: SourceLocation) {
        switch entry {
        case .regex(let pattern):
            if hasUnescapedHostDot(pattern) {
                sink.warning(
                    "the regex has an unescaped '.' in the host, which matches any character (example.com also matches exampleXcom); write '\\.'",
                    at: location)
            }
        case .wildcard(let scheme, let suffix, let port):
            if PublicSuffixes.contains(suffix) {
                let written = "\(scheme)://*.\(suffix)" + (port.map { ":\($0)" } ?? "")
                sink.warning(
                    "\(written) covers a public suffix: anyone can register a site under \(suffix); list your own origins or use a wildcard under your own domain",
                    at: location)
            }
        default:
            break
        }
    }
}

/// `localhost`, `*.localhost`, 127.0.0.0/8 and `[::1]`: http there is not on the network.
func isLocalHost(_ host: String) -> Bool {
    if host == "localhost" || host.hasSuffix(".localhost") || host == "[::1]" { return true }
    // 127.0.0.0/8, written as an IPv4 address (not a name such as 127.evil.example).
    let parts = host.split(separator: ".", omittingEmptySubsequences: false)
    return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
}

/// An RFC 9110 token: what method and header names are made of.
func isToken(_ text: String) -> Bool {
    !text.isEmpty
        && text.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
}

/// Whether a `~REGEX` has a `.` meant literally but left unescaped in the host
/// part: after `://` (or from the start if absent) up to the port `:` or a
/// `/`, outside `[…]`. A `.` followed by a quantifier (`.*`, `.+`, `.?`,
/// `.{n}`) is taken as a deliberate "any characters".
func hasUnescapedHostDot(_ pattern: String) -> Bool {
    let scalars = Array(pattern.unicodeScalars)
    var index = 0
    if let range = pattern.firstRange(of: "://") {
        index = pattern.unicodeScalars.distance(from: pattern.startIndex, to: range.upperBound)
    }
    var inClass = false
    while index < scalars.count {
        let scalar = scalars[index]
        if scalar == "\\" {
            index += 2
            continue
        }
        if inClass {
            if scalar == "]" { inClass = false }
            index += 1
            continue
        }
        switch scalar {
        case "[":
            inClass = true
        case "/":
            return false
        case ":":
            // `(?:` is a group, not the port.
            if index == 0 || scalars[index - 1] != "?" { return false }
        case ".":
            let next: Unicode.Scalar? = index + 1 < scalars.count ? scalars[index + 1] : nil
            if let next, "*+?{".unicodeScalars.contains(next) {
                break
            }
            return true
        default:
            break
        }
        index += 1
    }
    return false
}
