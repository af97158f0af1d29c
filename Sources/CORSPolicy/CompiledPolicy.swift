import HeaderFields

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
    let headers: HeaderNameSet
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

    /// The most `Access-Control-Request-Headers` items a preflight may carry (docs/DESIGN.md, "Request handling").
    package static let maxRequestHeaderNames = 64
    /// The largest `Access-Control-Request-Headers` list, in bytes (docs/DESIGN.md, "Request handling").
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
            headers = HeaderNameSet([])
            allowHeadersValue = nil
        case .list(let list):
            // `allow_headers * Authorization`: `*` echoes, and the listed names
            // (Authorization above all) are allowed by name.
            let star = list.contains("*")
            anyHeader = star
            let named = list.filter { $0 != "*" }
            headers = HeaderNameSet(named)
            allowHeadersValue = star ? nil : named.joined(separator: ", ")
        }

        credentialsField = settings.allowCredentials ? HeaderField(CORSHeader.allowCredentials, "true") : nil
        switch settings.exposeHeaders {
        case .any: exposeField = HeaderField(CORSHeader.exposeHeaders, "*")
        case .list(let list):
            exposeField = list.isEmpty ? nil : HeaderField(CORSHeader.exposeHeaders, list.joined(separator: ", "))
        }
        // Whole seconds, rounded down (docs/CONFIG.md §6: 1500ms sends 1).
        maxAgeField = settings.maxAgeMilliseconds.map { HeaderField(CORSHeader.maxAge, String(max(0, $0) / 1000)) }
        preflightDenyHeaders = [HeaderField(CORSHeader.vary, CORSHeader.preflightVary)]
        // A 204 carries no Content-Length; a 200 carries `Content-Length: 0` (docs/DESIGN.md, "Response headers").
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
        // OPTIONS without Access-Control-Request-Method is an actual request (docs/DESIGN.md, "Request handling").
        if facts.method == "OPTIONS", let requestedMethod = facts.requestMethod {
            return decidePreflight(facts, origin: origin, requestedMethod: requestedMethod)
        }
        return decideActual(facts, origin: origin)
    }

    /// The decision for a WebSocket handshake. Browsers do not apply CORS to WebSocket, so only
    /// the origin counts here (methods, headers and credentials rules do not apply): no `Origin`,
    /// the proxy's own, or an allowed one is forwarded (with the headers an allowed actual
    /// request gets, for an upstream that answers something other than 101); another one is
    /// denied, reported or let through as `enforce` says, with the usual reason codes.
    package func decideWebSocket(_ facts: RequestFacts, selfOrigins: Set<String>) -> Decision {
        switch classify(facts, selfOrigins: selfOrigins) {
        case .absent:
            return .forward(addHeaders: [], stripUpstreamCORS: true, varyOrigin: variesByOrigin, outcome: .noOrigin)
        case .sameOrigin:
            return .forward(addHeaders: [], stripUpstreamCORS: true, varyOrigin: variesByOrigin, outcome: .sameOrigin)
        case .crossOrigin(.denied(let denial)):
            return notAllowed(denial)
        case .crossOrigin(.allowed(let acao)):
            return .forward(
                addHeaders: actualHeaders(acao: acao, withVary: false), stripUpstreamCORS: true,
                varyOrigin: variesByOrigin, outcome: .allowed)
        }
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
        // A disallowed preflight is always 403, whatever `enforce` says (docs/CONFIG.md §6).
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
            // Case-sensitive, as methods are (docs/CONFIG.md §6).
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
        Denial(
            .methodNotAllowed, "method \(method) is not in allow_methods (\(methodsInWords)) for route \(routePattern)")
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
        var firstRefused: String? = nil
        var refusedAuthorization = false
        var echoed = ""
        var echoedNames = HeaderNameSet([])
        for line in lines {
            var text = line
            text.withUTF8 { bytes in
                forEachItem(bytes) { name in
                    count += 1
                    guard firstRefused == nil, count <= Self.maxRequestHeaderNames else { return }
                    if headers.contains(name) {
                        if anyHeader { appendEcho(name, to: &echoed, seen: &echoedNames) }
                    } else if anyHeader, isToken(name), !HeaderNameSet.isAuthorization(name) {
                        appendEcho(name, to: &echoed, seen: &echoedNames)
                    } else {
                        firstRefused = String(decoding: name, as: UTF8.self)
                        refusedAuthorization = HeaderNameSet.isAuthorization(name)
                    }
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
            if anyHeader, refusedAuthorization {
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

    private func appendEcho(_ name: UnsafeBufferPointer<UInt8>, to echoed: inout String, seen: inout HeaderNameSet) {
        guard !seen.contains(name) else { return }
        let text = String(decoding: name, as: UTF8.self)
        seen.insert(text)
        if !echoed.isEmpty { echoed += ", " }
        echoed += text
    }

    /// Calls `body` with each non-empty, trimmed item of a comma list.
    private func forEachItem(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        var start = 0
        for index in 0...bytes.count where index == bytes.count || bytes[index] == UInt8(ascii: ",") {
            var itemStart = start
            var itemEnd = index
            while itemStart < itemEnd, isOptionalWhitespace(bytes[itemStart]) { itemStart += 1 }
            while itemEnd > itemStart, isOptionalWhitespace(bytes[itemEnd - 1]) { itemEnd -= 1 }
            if itemStart < itemEnd { body(UnsafeBufferPointer(rebasing: bytes[itemStart..<itemEnd])) }
            start = index + 1
        }
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
        var found: String? = nil
        var lines = 0
        for candidate in facts.origins {
            lines += 1
            if found == nil, !candidate.utf8.allSatisfy(isOptionalWhitespace) { found = candidate }
        }
        // An empty `Origin:` counts as absent; so do several empty ones.
        guard let line = found else { return .absent }
        if lines > 1 {
            return .crossOrigin(
                .denied(
                    Denial(
                        .multipleOrigins,
                        "the request has \(lines) Origin lines; a request carries exactly one origin (route \(routePattern))"
                    )))
        }
        // Fast path: a listed origin sent in normalised form, as browsers send it,
        // is valid by construction; skip the scan.
        if exactOrigins.contains(line), let request = RequestOrigin(listed: line) {
            if isSameOrigin(request, facts: facts, selfOrigins: selfOrigins) { return .sameOrigin }
            return .crossOrigin(.allowed(sendsStarOrigin ? "*" : line))
        }
        var text = line
        let shape = text.withUTF8 { OriginLine.read($0) }
        let sent = slice(line, shape.start, shape.end)
        switch shape.kind {
        case .multiple:
            return .crossOrigin(
                .denied(
                    Denial(
                        .multipleOrigins,
                        "Origin '\(sent)' holds more than one value; a request carries exactly one origin (route \(routePattern))"
                    )))
        case .null:
            guard anyOrigin || allowsNull else {
                return .crossOrigin(
                    .denied(
                        Denial(
                            .originNotAllowed,
                            "origin null is not in allow_origin for route \(routePattern) (only a listed null or * allows it)"
                        )))
            }
            return .crossOrigin(.allowed(sendsStarOrigin ? "*" : string(sent, of: line)))
        case .malformed(let error):
            return .crossOrigin(
                .denied(
                    Denial(
                        .malformedOrigin,
                        "origin \(sent) is not a valid serialized origin (\(error.message)) for route \(routePattern)"))
            )
        case .origin(let scan):
            let sentString = string(sent, of: line)
            let request = RequestOrigin(sent: sentString, scan: scan)
            if isSameOrigin(request, facts: facts, selfOrigins: selfOrigins) { return .sameOrigin }
            guard matches(request) else {
                return .crossOrigin(
                    .denied(
                        Denial(.originNotAllowed, "origin \(sent) is not in allow_origin for route \(routePattern)")))
            }
            // The request's Origin exactly as sent, or `*` (docs/DESIGN.md, "Response headers").
            return .crossOrigin(.allowed(sendsStarOrigin ? "*" : sentString))
        }
    }

    private func slice(_ line: String, _ start: Int, _ end: Int) -> Substring {
        let utf8 = line.utf8
        return line[utf8.index(utf8.startIndex, offsetBy: start)..<utf8.index(utf8.startIndex, offsetBy: end)]
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
        var host = rawHost
        var normalised = origin.normalised
        let authorityStart = origin.authorityOffset
        // `Host: example.com:80` on an http listener is `http://example.com`.
        let defaultPort: StaticString = facts.scheme == .http ? ":80" : ":443"
        let equal = host.withUTF8 { h in
            normalised.withUTF8 { o in
                var start = 0
                var end = h.count
                while start < end, isOptionalWhitespace(h[start]) { start += 1 }
                while end > start, isOptionalWhitespace(h[end - 1]) { end -= 1 }
                let portLength = defaultPort.utf8CodeUnitCount
                if end - start > portLength,
                    ASCII.equalsLowercase(UnsafeBufferPointer(rebasing: h[(end - portLength)..<end]), defaultPort)
                {
                    end -= portLength
                }
                guard o.count - authorityStart == end - start else { return false }
                for i in 0..<(end - start) where ASCII.lowercased(h[start + i]) != o[authorityStart + i] {
                    return false
                }
                return true
            }
        }
        if equal { return true }
        // An IPv6 Host may be written in a non-canonical form: compare parsed.
        guard origin.host.utf8.first == UInt8(ascii: "["), rawHost.utf8.contains(UInt8(ascii: "[")),
            let parsed = Origin.parse("\(origin.scheme)://\(trimmedOWS(Substring(rawHost)))")
        else {
            return false
        }
        return parsed.serialized == origin.normalised
    }
}

/// What one `Origin` line holds, read in one pass over its bytes. `start..<end` is
/// the value without surrounding whitespace.
struct OriginLine {
    enum Kind {
        case multiple
        case null
        case malformed(OriginSyntaxError)
        case origin(OriginScan)
    }
    var start: Int
    var end: Int
    var kind: Kind

    static func read(_ bytes: UnsafeBufferPointer<UInt8>) -> OriginLine {
        var start = 0
        var end = bytes.count
        while start < end, isOptionalWhitespace(bytes[start]) { start += 1 }
        while end > start, isOptionalWhitespace(bytes[end - 1]) { end -= 1 }
        for i in start..<end where bytes[i] == UInt8(ascii: ",") || isOptionalWhitespace(bytes[i]) {
            return OriginLine(start: start, end: end, kind: .multiple)
        }
        let value = UnsafeBufferPointer(rebasing: bytes[start..<end])
        // `null` is case-sensitive: browsers send it lowercase.
        if value.elementsEqual("null".utf8) { return OriginLine(start: start, end: end, kind: .null) }
        switch OriginScan.scan(value) {
        case .success(let scan): return OriginLine(start: start, end: end, kind: .origin(scan))
        case .failure(let error): return OriginLine(start: start, end: end, kind: .malformed(error))
        }
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
    /// Where `host[:port]` starts in `normalised`'s UTF-8.
    let authorityOffset: Int

    /// An origin known to be valid and normalised (it is in the exact set): only
    /// finds the parts. nil if it is not shaped as one after all.
    init?(listed text: String) {
        var copy = text
        let offsets: (schemeEnd: Int, hostEnd: Int, port: Int?)? = copy.withUTF8 { bytes in
            guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), bytes.count > colon + 3 else { return nil }
            let hostStart = colon + 3
            var hostEnd = hostStart
            if bytes[hostStart] == UInt8(ascii: "[") {
                while hostEnd < bytes.count, bytes[hostEnd] != UInt8(ascii: "]") { hostEnd += 1 }
                hostEnd += 1
            }
            while hostEnd < bytes.count, bytes[hostEnd] != UInt8(ascii: ":") { hostEnd += 1 }
            guard hostEnd <= bytes.count else { return nil }
            var port: Int? = nil
            if hostEnd < bytes.count {
                var value = 0
                for i in (hostEnd + 1)..<bytes.count { value = value * 10 + Int(bytes[i] &- UInt8(ascii: "0")) }
                port = value
            }
            return (colon, hostEnd, port)
        }
        guard let offsets else { return nil }
        let utf8 = text.utf8
        let schemeEnd = utf8.index(utf8.startIndex, offsetBy: offsets.schemeEnd)
        let hostStart = utf8.index(schemeEnd, offsetBy: 3)
        let hostEnd = utf8.index(utf8.startIndex, offsetBy: offsets.hostEnd)
        normalised = text
        authorityOffset = offsets.schemeEnd + 3
        scheme = text[..<schemeEnd]
        host = text[hostStart..<hostEnd]
        port = offsets.port
    }

    /// `scan` describes `sent`'s bytes.
    init(sent: String, scan: OriginScan) {
        if scan.isNormalised {
            normalised = sent
            authorityOffset = scan.hostStart
            let utf8 = sent.utf8
            let schemeEnd = utf8.index(utf8.startIndex, offsetBy: scan.schemeEnd)
            let hostStart = utf8.index(utf8.startIndex, offsetBy: scan.hostStart)
            let hostEnd = utf8.index(utf8.startIndex, offsetBy: scan.hostEnd)
            scheme = sent[..<schemeEnd]
            host = sent[hostStart..<hostEnd]
            port = scan.port
        } else {
            var text = sent
            let origin = text.withUTF8 { scan.makeOrigin($0) }
            let serialized = origin.serialized
            let utf8 = serialized.utf8
            let schemeLength = origin.scheme.utf8.count
            let schemeEnd = utf8.index(utf8.startIndex, offsetBy: schemeLength)
            let hostStart = utf8.index(schemeEnd, offsetBy: 3)
            let hostEnd = utf8.index(hostStart, offsetBy: origin.host.utf8.count)
            normalised = serialized
            authorityOffset = schemeLength + 3
            scheme = serialized[..<schemeEnd]
            host = serialized[hostStart..<hostEnd]
            port = origin.port
        }
    }
}
