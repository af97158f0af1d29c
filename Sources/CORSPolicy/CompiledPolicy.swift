/// A route's CORS settings compiled at load into sets, flags and rendered header
/// values, so that deciding a request is one pass over `Origin` and lookups.
package final class CompiledPolicy: Sendable {
    /// The settings this policy was compiled from.
    package let settings: CORSSettings
    /// The route as written (`/api/`, `= /healthz`), for reason words.
    package let routePattern: String

    // allow_origin
    let anyOrigin: Bool
    let allowsNull: Bool
    /// Normalised serialized origins.
    let exactOrigins: Set<String>
    let wildcards: [WildcardOrigin]
    let regexes: [OriginRegex]
    /// Responses differ by origin, so every response carries `Vary: Origin`.
    let variesByOrigin: Bool
    /// ACAO is `*` rather than the echoed origin.
    let sendsStarOrigin: Bool

    // allow_methods
    let anyMethod: Bool
    let methods: Set<String>
    /// `GET HEAD POST`, for reason words.
    let methodsInWords: String
    let allowMethodsValue: String

    // allow_headers
    let anyHeader: Bool
    /// Listed names; compared case-insensitively.
    let headers: Set<CaseInsensitiveName>
    /// The listed names as written, nil when `*` decides (the request's names are echoed).
    let allowHeadersValue: String?

    // Static response fields, built once.
    let credentialsField: HeaderField?
    let exposeField: HeaderField?
    let maxAgeField: HeaderField?
    let preflightVaryField = HeaderField(CORSHeader.vary, CORSHeader.preflightVary)
    let preflightDenyHeaders: [HeaderField]
    let contentLengthField: HeaderField?
    /// Headers of a local 403/404 that adds no CORS header: `Vary: Origin` or nothing.
    let denyHeaders: [HeaderField]

    /// The most `Access-Control-Request-Headers` items a preflight may carry (SPEC 3).
    package static let maxRequestHeaderNames = 64
    /// The largest `Access-Control-Request-Headers` list, in bytes (SPEC 3).
    package static let maxRequestHeaderBytes = 4096

    /// Compiles `settings`; `routePattern` is only used in reason words.
    package init(settings: CORSSettings, routePattern: String) {
        self.settings = settings
        self.routePattern = routePattern

        var anyOrigin = false
        var allowsNull = false
        var exact = Set<String>()
        var wildcards: [WildcardOrigin] = []
        var regexes: [OriginRegex] = []
        for entry in settings.allowOrigin {
            switch entry {
            case .any: anyOrigin = true
            case .null: allowsNull = true
            case .exact(let origin): exact.insert(origin.serialized)
            case .wildcard(let scheme, let suffix, let port):
                wildcards.append(WildcardOrigin(scheme: scheme, dotSuffix: "." + suffix, port: port))
            case .regex(let pattern):
                // The conf loader has validated the pattern; one that still does not
                // compile matches nothing rather than everything.
                if let regex = OriginRegex(pattern) { regexes.append(regex) }
            }
        }
        self.anyOrigin = anyOrigin
        self.allowsNull = allowsNull
        self.exactOrigins = exact
        self.wildcards = wildcards
        self.regexes = regexes
        // `*` with credentials is refused at load; should it get here anyway the
        // origin is echoed, so the response varies by origin after all.
        self.sendsStarOrigin = anyOrigin && !settings.allowCredentials
        self.variesByOrigin = !sendsStarOrigin

        switch settings.allowMethods {
        case .any:
            anyMethod = true
            methods = []
            methodsInWords = "*"
            allowMethodsValue = ""
        case .list(let list):
            anyMethod = list.contains("*")
            methods = Set(list)
            methodsInWords = list.joined(separator: " ")
            allowMethodsValue = list.joined(separator: ", ")
        }

        switch settings.allowHeaders {
        case .any:
            anyHeader = true
            headers = []
            allowHeadersValue = nil
        case .list(let list):
            // `allow_headers * Authorization`: `*` echoes, and the listed names
            // (Authorization above all) are allowed by name.
            let star = list.contains("*")
            anyHeader = star
            let named = list.filter { $0 != "*" }
            headers = Set(named.map { CaseInsensitiveName(Substring($0.lowercased())) })
            allowHeadersValue = star ? nil : named.joined(separator: ", ")
        }

        credentialsField = settings.allowCredentials ? HeaderField(CORSHeader.allowCredentials, "true") : nil
        switch settings.exposeHeaders {
        case .any: exposeField = HeaderField(CORSHeader.exposeHeaders, "*")
        case .list(let list):
            exposeField = list.isEmpty ? nil : HeaderField(CORSHeader.exposeHeaders, list.joined(separator: ", "))
        }
        // Whole seconds, rounded down (SPEC 2: 1500ms sends 1).
        maxAgeField = settings.maxAgeMilliseconds.map { HeaderField(CORSHeader.maxAge, String(max(0, $0) / 1000)) }
        preflightDenyHeaders = [HeaderField(CORSHeader.vary, CORSHeader.preflightVary)]
        // A 204 carries no Content-Length; a 200 carries `Content-Length: 0` (SPEC 3).
        contentLengthField = settings.preflightStatus == 204 ? nil : HeaderField(CORSHeader.contentLength, "0")
        denyHeaders = variesByOrigin ? [HeaderField(CORSHeader.vary, "Origin")] : []
    }

    // MARK: - Deciding

    /// The decision for a request on a CORS-on route. `selfOrigins` are the
    /// normalised serialized origins of the conf's `self_origin`.
    package func decide(_ facts: RequestFacts, selfOrigins: Set<String>) -> Decision {
        let origin: OriginVerdict
        switch classify(facts, selfOrigins: selfOrigins) {
        case .absent:
            return .forward(addHeaders: [], stripUpstreamCORS: true, varyOrigin: variesByOrigin, outcome: .noOrigin)
        case .sameOrigin:
            return .forward(addHeaders: [], stripUpstreamCORS: true, varyOrigin: variesByOrigin, outcome: .sameOrigin)
        case .crossOrigin(let verdict):
            origin = verdict
        }
        // OPTIONS without Access-Control-Request-Method is an actual request (SPEC 3).
        if facts.method == "OPTIONS", let requestedMethod = facts.requestMethod {
            return decidePreflight(facts, origin: origin, requestedMethod: requestedMethod)
        }
        return decideActual(facts, origin: origin)
    }

    /// The no-route 404, using these (top-level `cors {}`) settings: the headers an
    /// allowed actual response would get when the origin is allowed, else none;
    /// `Vary: Origin` unless `allow_origin` is `*`.
    package func decideNoRoute(_ facts: RequestFacts, selfOrigins: Set<String>) -> Decision {
        guard case .crossOrigin(.allowed(let acao)) = classify(facts, selfOrigins: selfOrigins) else {
            return .deny(status: 404, headers: denyHeaders, denial: nil)
        }
        return .deny(status: 404, headers: actualHeaders(acao: acao, withVary: true), denial: nil)
    }

    private func decideActual(_ facts: RequestFacts, origin: OriginVerdict) -> Decision {
        let acao: String
        switch origin {
        case .denied(let denial): return notAllowed(denial)
        case .allowed(let value): acao = value
        }
        guard anyMethod || methods.contains(facts.method) else {
            return notAllowed(methodDenial(facts.method))
        }
        return .forward(
            addHeaders: actualHeaders(acao: acao, withVary: false), stripUpstreamCORS: true,
            varyOrigin: variesByOrigin, outcome: .allowed)
    }

    /// `enforce` decides what happens to a disallowed actual request.
    private func notAllowed(_ denial: Denial) -> Decision {
        switch settings.enforce {
        case .on:
            return .deny(status: 403, headers: denyHeaders, denial: denial)
        case .report:
            return .forward(
                addHeaders: [], stripUpstreamCORS: true, varyOrigin: variesByOrigin, outcome: .reported(denial))
        case .off:
            return .forward(
                addHeaders: [], stripUpstreamCORS: true, varyOrigin: variesByOrigin, outcome: .unenforced(denial))
        }
    }

    private func actualHeaders(acao: String, withVary: Bool) -> [HeaderField] {
        var fields: [HeaderField] = []
        fields.reserveCapacity(4)
        fields.append(HeaderField(CORSHeader.allowOrigin, acao))
        if let credentialsField { fields.append(credentialsField) }
        if let exposeField { fields.append(exposeField) }
        if withVary, let vary = denyHeaders.first { fields.append(vary) }
        return fields
    }

    private func decidePreflight(_ facts: RequestFacts, origin: OriginVerdict, requestedMethod: String) -> Decision {
        // A disallowed preflight is always 403, whatever `enforce` says (SPEC 3).
        let acao: String
        switch origin {
        case .denied(let denial): return .deny(status: 403, headers: preflightDenyHeaders, denial: denial)
        case .allowed(let value): acao = value
        }

        let method = string(trimmedOWS(Substring(requestedMethod)), of: requestedMethod)
        let allowMethods: String
        if anyMethod {
            // `*` echoes the requested method; only a token is ever echoed.
            guard isToken(method) else {
                return .deny(status: 403, headers: preflightDenyHeaders, denial: methodDenial(method))
            }
            allowMethods = method
        } else {
            // Case-sensitive, as methods are (SPEC 2).
            guard methods.contains(method) else {
                return .deny(status: 403, headers: preflightDenyHeaders, denial: methodDenial(method))
            }
            allowMethods = allowMethodsValue
        }

        let allowHeaders: String?
        switch checkRequestHeaders(facts.requestHeaders) {
        case .denied(let denial): return .deny(status: 403, headers: preflightDenyHeaders, denial: denial)
        case .allowed(let value): allowHeaders = value
        }

        if facts.privateNetwork && !settings.allowPrivateNetwork {
            return .deny(
                status: 403, headers: preflightDenyHeaders,
                denial: Denial(
                    .privateNetworkNotAllowed,
                    "Private Network Access was requested but allow_private_network is off for route \(routePattern)"
                ))
        }
        let privateNetwork = facts.privateNetwork && settings.allowPrivateNetwork

        var fields: [HeaderField] = []
        fields.reserveCapacity(8)
        fields.append(HeaderField(CORSHeader.allowOrigin, acao))
        fields.append(HeaderField(CORSHeader.allowMethods, allowMethods))
        if let allowHeaders { fields.append(HeaderField(CORSHeader.allowHeaders, allowHeaders)) }
        if let credentialsField { fields.append(credentialsField) }
        if let maxAgeField { fields.append(maxAgeField) }
        if privateNetwork { fields.append(HeaderField(CORSHeader.allowPrivateNetwork, "true")) }
        fields.append(preflightVaryField)
        if let contentLengthField { fields.append(contentLengthField) }
        return .preflight(status: settings.preflightStatus, headers: fields)
    }

    private func methodDenial(_ method: String) -> Denial {
        Denial(.methodNotAllowed, "method \(method) is not in allow_methods (\(methodsInWords)) for route \(routePattern)")
    }

    /// Reads every `Access-Control-Request-Headers` line as one comma list. Returns
    /// the `Access-Control-Allow-Headers` value (nil when nothing was requested),
    /// or why the preflight is denied. Walks the lines in place: no split arrays.
    private func checkRequestHeaders(_ lines: [String]) -> HeaderCheck {
        var totalBytes = 0
        for line in lines { totalBytes += line.utf8.count }
        totalBytes += max(0, lines.count - 1)  // the commas that would join them
        guard totalBytes <= Self.maxRequestHeaderBytes else {
            return .denied(
                Denial(
                    .requestHeadersTooLarge,
                    "Access-Control-Request-Headers is \(totalBytes) bytes (at most \(Self.maxRequestHeaderBytes)) for route \(routePattern)"
                ))
        }

        var count = 0
        var firstRefused: Substring? = nil
        var echoed = ""
        var echoedNames: [Substring] = []
        for line in lines {
            forEachItem(line) { name in
                count += 1
                guard firstRefused == nil, count <= Self.maxRequestHeaderNames else { return }
                if headers.contains(CaseInsensitiveName(name)) {
                    if anyHeader { appendEcho(name, to: &echoed, seen: &echoedNames) }
                } else if anyHeader, isToken(name), !isAuthorization(name) {
                    appendEcho(name, to: &echoed, seen: &echoedNames)
                } else {
                    firstRefused = name
                }
            }
        }
        guard count <= Self.maxRequestHeaderNames else {
            return .denied(
                Denial(
                    .requestHeadersTooLarge,
                    "Access-Control-Request-Headers lists \(count) names (at most \(Self.maxRequestHeaderNames)) for route \(routePattern)"
                ))
        }
        if let name = firstRefused {
            if anyHeader, isAuthorization(name) {
                return .denied(
                    Denial(
                        .headerNotAllowed,
                        "Authorization must be listed by name in allow_headers; '*' does not cover it (route \(routePattern))"
                    ))
            }
            return .denied(
                Denial(.headerNotAllowed, "request header \(name) is not in allow_headers for route \(routePattern)"))
        }
        guard count > 0 else { return .allowed(nil) }
        return .allowed(anyHeader ? echoed : allowHeadersValue)
    }

    private func appendEcho(_ name: Substring, to echoed: inout String, seen: inout [Substring]) {
        let key = CaseInsensitiveName(name)
        // At most 64 names: a linear look is cheaper than a Set's allocation.
        guard !seen.contains(where: { CaseInsensitiveName($0) == key }) else { return }
        seen.append(name)
        if !echoed.isEmpty { echoed += ", " }
        echoed += name
    }

    /// Calls `body` with each non-empty, trimmed item of a comma list, in place.
    private func forEachItem(_ line: String, _ body: (Substring) -> Void) {
        let utf8 = line.utf8
        var start = utf8.startIndex
        var index = start
        while true {
            if index == utf8.endIndex || utf8[index] == UInt8(ascii: ",") {
                let item = trimmedOWS(line[start..<index])
                if !item.isEmpty { body(item) }
                if index == utf8.endIndex { return }
                index = utf8.index(after: index)
                start = index
            } else {
                index = utf8.index(after: index)
            }
        }
    }

    private func isAuthorization(_ name: Substring) -> Bool {
        CaseInsensitiveName(name) == CaseInsensitiveName("authorization")
    }

    // MARK: - Origin

    private enum HeaderCheck {
        /// The `Access-Control-Allow-Headers` value; nil when no header was requested.
        case allowed(String?)
        case denied(Denial)
    }

    private enum OriginClass {
        case absent
        case sameOrigin
        case crossOrigin(OriginVerdict)
    }

    private enum OriginVerdict {
        /// The `Access-Control-Allow-Origin` value to send.
        case allowed(String)
        case denied(Denial)
    }

    /// One pass over the `Origin` lines: absent, same-origin, or cross-origin and
    /// whether `allow_origin` allows it.
    private func classify(_ facts: RequestFacts, selfOrigins: Set<String>) -> OriginClass {
        var line: String? = nil
        var lines = 0
        for candidate in facts.origins {
            lines += 1
            if line == nil, !trimmedOWS(Substring(candidate)).isEmpty { line = candidate }
        }
        // An empty `Origin:` counts as absent; so do several empty ones.
        guard let line else { return .absent }
        if lines > 1 {
            return .crossOrigin(
                .denied(
                    Denial(
                        .multipleOrigins,
                        "the request has \(lines) Origin lines; a request carries exactly one origin (route \(routePattern))"
                    )))
        }
        let sent = trimmedOWS(Substring(line))
        if sent.utf8.contains(where: { $0 == UInt8(ascii: ",") || isOptionalWhitespace($0) }) {
            return .crossOrigin(
                .denied(
                    Denial(
                        .multipleOrigins,
                        "Origin '\(sent)' holds more than one value; a request carries exactly one origin (route \(routePattern))"
                    )))
        }
        let sentString = string(sent, of: line)

        if sent == "null" {
            guard anyOrigin || allowsNull else {
                return .crossOrigin(
                    .denied(
                        Denial(
                            .originNotAllowed,
                            "origin null is not in allow_origin for route \(routePattern) (only a listed null or * allows it)"
                        )))
            }
            return .crossOrigin(.allowed(sendsStarOrigin ? "*" : sentString))
        }

        guard let request = RequestOrigin(sentString) else {
            let problem: String
            switch Origin.parseDetailed(sent) {
            case .failure(let error): problem = error.message
            case .success: problem = "unreadable"
            }
            return .crossOrigin(
                .denied(
                    Denial(
                        .malformedOrigin,
                        "origin \(sent) is not a valid serialized origin (\(problem)) for route \(routePattern)")))
        }
        if isSameOrigin(request, facts: facts, selfOrigins: selfOrigins) { return .sameOrigin }
        guard matches(request) else {
            return .crossOrigin(
                .denied(
                    Denial(.originNotAllowed, "origin \(sent) is not in allow_origin for route \(routePattern)")))
        }
        // The request's Origin exactly as sent, or `*` (SPEC 3).
        return .crossOrigin(.allowed(sendsStarOrigin ? "*" : sentString))
    }

    private func matches(_ origin: RequestOrigin) -> Bool {
        if anyOrigin || exactOrigins.contains(origin.normalised) { return true }
        for wildcard in wildcards where wildcard.matches(origin) { return true }
        for regex in regexes where regex.wholeMatches(origin.normalised) { return true }
        return false
    }

    /// The listener's scheme with the request's `Host`, or a `self_origin`.
    private func isSameOrigin(_ origin: RequestOrigin, facts: RequestFacts, selfOrigins: Set<String>) -> Bool {
        if !selfOrigins.isEmpty, selfOrigins.contains(origin.normalised) { return true }
        guard let rawHost = facts.host, origin.scheme == facts.scheme.rawValue else { return false }
        var host = trimmedOWS(Substring(rawHost))
        // `Host: example.com:80` on an http listener is `http://example.com`.
        let defaultPortSuffix = facts.scheme == .http ? ":80" : ":443"
        if host.utf8.count > defaultPortSuffix.utf8.count {
            let tail = host.utf8.suffix(defaultPortSuffix.utf8.count)
            if tail.elementsEqual(defaultPortSuffix.utf8) {
                host = host[..<tail.startIndex]
            }
        }
        let authority = origin.authority
        if authority.utf8.elementsEqual(host.utf8, by: { $0 == lowercased($1) }) { return true }
        // An IPv6 Host may be written in a non-canonical form: compare parsed.
        guard host.utf8.first == UInt8(ascii: "["), let parsed = Origin.parse("\(origin.scheme)://\(host)") else {
            return false
        }
        return parsed.serialized == origin.normalised
    }
}

/// `scheme://*.suffix[:port]`, with the suffix's leading dot kept so a match is a
/// plain byte suffix test that can never match the bare suffix.
struct WildcardOrigin: Sendable {
    let scheme: String
    let dotSuffix: String
    let port: Int?

    func matches(_ origin: RequestOrigin) -> Bool {
        guard origin.port == port, origin.scheme == scheme else { return false }
        let host = origin.host.utf8
        let suffix = dotSuffix.utf8
        return host.count > suffix.count && host.suffix(suffix.count).elementsEqual(suffix)
    }
}

/// A valid request `Origin` in normalised form, with its parts as slices of it.
/// Built without allocating when the browser sent it normalised (the usual case).
struct RequestOrigin {
    let normalised: String
    let scheme: Substring
    let host: Substring
    let port: Int?

    /// `host[:port]` of the normalised origin.
    var authority: Substring {
        normalised[host.startIndex...]
    }

    init?(_ sent: String) {
        var text = sent
        let scanned: Result<OriginScan, OriginSyntaxError>? = text.withUTF8 { OriginScan.scan($0) }
        guard case .success(let scan)? = scanned else { return nil }
        if scan.isNormalised {
            let utf8 = sent.utf8
            normalised = sent
            let schemeEnd = utf8.index(utf8.startIndex, offsetBy: scan.schemeEnd)
            let hostStart = utf8.index(utf8.startIndex, offsetBy: scan.hostStart)
            let hostEnd = utf8.index(utf8.startIndex, offsetBy: scan.hostEnd)
            scheme = sent[..<schemeEnd]
            host = sent[hostStart..<hostEnd]
            port = scan.port
        } else {
            guard let origin = Origin.parse(sent) else { return nil }
            let serialized = origin.serialized
            let utf8 = serialized.utf8
            let schemeEnd = utf8.index(utf8.startIndex, offsetBy: origin.scheme.utf8.count)
            let hostStart = utf8.index(schemeEnd, offsetBy: 3)
            let hostEnd = utf8.index(hostStart, offsetBy: origin.host.utf8.count)
            normalised = serialized
            scheme = serialized[..<schemeEnd]
            host = serialized[hostStart..<hostEnd]
            port = origin.port
        }
    }
}
