import CORSPolicy
import ProxyConfig

/// Turns the denial lines of a log into the `allow_*` lines that would allow those
/// requests, without doing it blindly: origins that need a person's judgement (`null`,
/// plain-http or IP-address origins, malformed ones) and `Authorization` are held back with
/// the reason; a wildcard is suggested only for three or more hosts under one registrable
/// domain, never over a public suffix.
///
/// With a conf, each logged request is decided again against the route's current settings
/// (with `CompiledPolicy`, exactly as the proxy decides), so only what is still missing is
/// added. Without one, the reason code says what was refused, and what the proxy never got
/// to check (a preflight refused for its origin never had its method or headers checked)
/// is added as well, except GET, HEAD and POST, which every conf allows unless it says
/// otherwise.
package struct Suggester: Sendable {
    package let configuration: ProxyConfiguration?
    package let minCount: Int
    /// Only this route (a label as written: `/api/` or `= /healthz`).
    package let route: String?

    package init(configuration: ProxyConfiguration?, minCount: Int = 1, route: String? = nil) {
        self.configuration = configuration
        self.minCount = max(1, minCount)
        self.route = route.map(Self.normalisedLabel)
    }

    /// `=/healthz` and `= /healthz` name the same exact route.
    static func normalisedLabel(_ label: String) -> String {
        guard label.hasPrefix("=") else { return label }
        return "= " + label.dropFirst().drop(while: { $0 == " " })
    }

    package func suggest(_ digest: DenialDigest) -> Suggestion {
        var byRoute: [String: [(DenialDigest.Shape, DenialDigest.Seen)]] = [:]
        for (shape, seen) in digest.shapes where route == nil || shape.route == route {
            byRoute[shape.route, default: []].append((shape, seen))
        }
        var routes: [Suggestion.Route] = []
        for label in byRoute.keys.sorted() {
            let suggestion = suggestRoute(label, byRoute[label] ?? [])
            if !suggestion.isEmpty || suggestion.note != nil { routes.append(suggestion) }
        }
        var emptyReason: String?
        if routes.allSatisfy(\.isEmpty) {
            if digest.denialLines == 0 {
                emptyReason = "the log has no denial lines"
            } else if byRoute.isEmpty, let route {
                emptyReason = "no denial lines for route \(route)"
            } else if minCount > 1 {
                emptyReason = "nothing was seen \(minCount) times or more"
            } else {
                emptyReason = "the conf already allows every request the log shows denied"
            }
        }
        return Suggestion(
            routes: routes, fromConfiguration: configuration != nil, minCount: minCount,
            denialLines: digest.denialLines, deniedLines: digest.deniedLines, reportedLines: digest.reportedLines,
            linesRead: digest.linesRead, skippedLines: digest.skippedLines, emptyReason: emptyReason)
    }

    // MARK: - One route

    /// What each denied request of one route still needs, tallied.
    private struct Tally {
        var origins: [String: (origin: Origin, seen: DenialDigest.Seen)] = [:]
        var methods: [String: DenialDigest.Seen] = [:]
        /// Keyed by the lowercased name; the first spelling seen is kept.
        var headers: [String: (name: String, seen: DenialDigest.Seen)] = [:]
        var heldBack: [HeldKey: DenialDigest.Seen] = [:]

        struct HeldKey: Hashable {
            var value: String
            var reason: String
        }

        mutating func hold(_ value: String, _ reason: String, _ seen: DenialDigest.Seen) {
            heldBack[
                HeldKey(value: value, reason: reason), default: .init(count: 0, first: seen.first, last: seen.last)
            ]
            .merge(seen)
        }
    }

    private func suggestRoute(
        _ label: String, _ shapes: [(DenialDigest.Shape, DenialDigest.Seen)]
    )
        -> Suggestion.Route
    {
        var note: String?
        var probes: Probes?
        var settings: CORSSettings?
        if let configuration {
            if let route = configuration.routes.routes.first(where: { $0.label == label }) {
                guard let cors = route.cors else {
                    return Suggestion.Route(
                        label: label,
                        note: "cors off in the conf now: the proxy makes no CORS decision on this route",
                        directives: [], heldBack: [])
                }
                settings = cors
                probes = Probes(settings: cors, label: label, selfOrigins: configuration.selfOrigins)
            } else {
                note = "not in the conf: each line holds only the additions"
            }
        }

        var tally = Tally()
        for (shape, seen) in shapes {
            add(shape, seen, probes: probes, to: &tally)
        }

        var directives: [Suggestion.Directive] = []
        let origins = groupOrigins(tally.origins.values.map { ($0.origin, $0.seen) }).filter {
            $0.seen.count >= minCount
        }
        if !origins.isEmpty {
            directives.append(
                .init(
                    name: "allow_origin", current: settings.map { $0.allowOrigin.map(\.description) } ?? [],
                    additions: sorted(origins)))
        }
        let methods = tally.methods.map { Suggestion.Item(value: $0.key, seen: $0.value) }
            .filter { $0.seen.count >= minCount }
        if !methods.isEmpty {
            directives.append(
                .init(
                    name: "allow_methods", current: settings.map { Self.words($0.allowMethods) } ?? [],
                    additions: sorted(methods)))
        }
        let headers = tally.headers.values.map { Suggestion.Item(value: $0.name, seen: $0.seen) }
            .filter { $0.seen.count >= minCount }
        if !headers.isEmpty {
            directives.append(
                .init(
                    name: "allow_headers", current: settings.map { Self.words($0.allowHeaders) } ?? [],
                    additions: sorted(headers)))
        }
        let heldBack = tally.heldBack.map {
            Suggestion.HeldBack(value: $0.key.value, seen: $0.value, reason: $0.key.reason)
        }
        .filter { $0.seen.count >= minCount }
        .sorted { ($1.seen.count, $0.value, $0.reason) < ($0.seen.count, $1.value, $1.reason) }
        return Suggestion.Route(label: label, note: note, directives: directives, heldBack: heldBack)
    }

    private func sorted(_ items: [Suggestion.Item]) -> [Suggestion.Item] {
        items.sorted { ($1.seen.count, $0.value) < ($0.seen.count, $1.value) }
    }

    private static func words(_ list: TokenList) -> [String] {
        switch list {
        case .any: return ["*"]
        case .list(let items): return items
        }
    }

    // MARK: - One kind of request

    /// Adds to `tally` what `shape` still needs to be allowed.
    private func add(
        _ shape: DenialDigest.Shape, _ seen: DenialDigest.Seen, probes: Probes?, to tally: inout Tally
    ) {
        let reason = DenialReason(rawValue: shape.reason)
        let preflight = shape.kind == "preflight"
        // Requests no allow_* line can allow.
        switch reason {
        case .requestHeadersTooLarge:
            tally.hold("Access-Control-Request-Headers", Reasons.tooManyHeaders, seen)
            return
        case .multipleOrigins:
            tally.hold(shape.origin ?? "(several Origin lines)", Reasons.multipleOrigins, seen)
            return
        case .malformedOrigin:
            tally.hold(shape.origin ?? "(empty)", Reasons.malformed, seen)
            return
        default:
            break
        }

        // The origin.
        var originNeeded = false
        if let sent = shape.origin {
            originNeeded = probes.map { !$0.allows(origin: sent) } ?? (reason == .originNotAllowed)
            if originNeeded {
                switch OriginClass.classify(sent) {
                case .held(let value, let why):
                    tally.hold(value, why, seen)
                case .allowable(let origin):
                    tally.origins[
                        origin.serialized, default: (origin, .init(count: 0, first: seen.first, last: seen.last))
                    ]
                    .seen.merge(seen)
                }
            }
        }
        if shape.kind == "websocket" { return }

        // The method: the one a preflight asks for, or the actual request's.
        let method = (preflight ? shape.requestMethod : shape.method).map { $0.trimmingBlanks } ?? ""
        if !method.isEmpty {
            let needed: Bool
            if let probes {
                needed = !probes.allows(method: method, preflight: preflight)
            } else if reason == .methodNotAllowed {
                needed = true
            } else {
                // Refused for its origin before the method was checked; GET, HEAD and POST
                // are the built-in default.
                needed = reason == .originNotAllowed && originNeeded && !["GET", "HEAD", "POST"].contains(method)
            }
            if needed {
                if isToken(method) {
                    tally.methods[method, default: .init(count: 0, first: seen.first, last: seen.last)].merge(seen)
                } else {
                    tally.hold(method, Reasons.notAMethod, seen)
                }
            }
        }

        guard preflight else { return }
        // The headers a preflight asks for.
        var names: [String] = []
        var seenNames = Set<String>()
        for item in (shape.requestHeaders ?? "").split(separator: ",") {
            let name = String(item).trimmingBlanks
            if !name.isEmpty, seenNames.insert(name.lowercased()).inserted { names.append(name) }
        }
        if probes == nil {
            switch reason {
            case .headerNotAllowed:
                // Those before the refused one were allowed; the rest were never checked.
                if let refused = Self.refusedHeader(in: shape.detail),
                    let index = names.firstIndex(where: { $0.lowercased() == refused.lowercased() })
                {
                    names = Array(names[index...])
                }
            case .originNotAllowed, .methodNotAllowed:
                break  // never checked: all of them
            default:
                names = []  // allowed, or refused for something else
            }
        }
        for name in names where probes?.allows(header: name) != true {
            if name.lowercased() == "authorization" {
                tally.hold(name, Reasons.authorization, seen)
            } else if !isToken(name) {
                tally.hold(name, Reasons.notAHeader, seen)
            } else {
                tally.headers[name.lowercased(), default: (name, .init(count: 0, first: seen.first, last: seen.last))]
                    .seen.merge(seen)
            }
        }
        if reason == .privateNetworkNotAllowed, probes?.allowsPrivateNetwork != true {
            tally.hold("Access-Control-Request-Private-Network", Reasons.privateNetwork, seen)
        }
    }

    /// The header a `header_not_allowed` reason names.
    static func refusedHeader(in detail: String) -> String? {
        if detail.hasPrefix("Authorization must be listed") { return "Authorization" }
        let prefix = "request header "
        guard detail.hasPrefix(prefix) else { return nil }
        let rest = detail.dropFirst(prefix.count)
        guard let end = rest.firstIndex(of: " ") else { return nil }
        return String(rest[..<end])
    }

    // MARK: - Wildcards

    /// Three or more hosts under one registrable domain (same scheme and port) become one
    /// wildcard, over the longest suffix their parent domains share; every other origin
    /// stays exact.
    private func groupOrigins(_ origins: [(Origin, DenialDigest.Seen)]) -> [Suggestion.Item] {
        struct Key: Hashable {
            var scheme: String
            var port: Int?
            var domain: String
        }
        var groups: [Key: [(Origin, DenialDigest.Seen)]] = [:]
        var items: [Suggestion.Item] = []
        for (origin, seen) in origins {
            if !OriginClass.isIPAddress(origin.host), let domain = PublicSuffixes.registrableDomain(of: origin.host),
                origin.host != domain
            {
                groups[Key(scheme: origin.scheme, port: origin.port, domain: domain), default: []].append(
                    (origin, seen))
            } else {
                items.append(Suggestion.Item(value: origin.serialized, seen: seen))
            }
        }
        for (key, members) in groups {
            guard members.count >= 3, let wildcard = Self.wildcard(for: members.map(\.0.host), under: key.domain)
            else {
                items += members.map { Suggestion.Item(value: $0.0.serialized, seen: $0.1) }
                continue
            }
            let value = "\(key.scheme)://*.\(wildcard)" + (key.port.map { ":\($0)" } ?? "")
            guard case .success(.wildcard) = OriginEntry.parse(value) else {
                items += members.map { Suggestion.Item(value: $0.0.serialized, seen: $0.1) }
                continue
            }
            var seen = members[0].1
            for member in members.dropFirst() { seen.merge(member.1) }
            let hosts = members.sorted { ($1.1.count, $0.0.host) < ($0.1.count, $1.0.host) }
                .map { Suggestion.Item.Host(host: $0.0.host, count: $0.1.count) }
            items.append(Suggestion.Item(value: value, seen: seen, hosts: hosts))
        }
        return items
    }

    /// The longest label suffix the hosts' parent domains share, when it is at or below
    /// `domain` and not a public suffix.
    static func wildcard(for hosts: [String], under domain: String) -> String? {
        let parents = hosts.map { $0.split(separator: ".").dropFirst() }
        guard var common = parents.first.map(Array.init) else { return nil }
        for parent in parents.dropFirst() {
            let labels = Array(parent)
            var shared = 0
            while shared < min(common.count, labels.count),
                common[common.count - 1 - shared] == labels[labels.count - 1 - shared]
            {
                shared += 1
            }
            common = Array(common.suffix(shared))
        }
        let suffix = common.joined(separator: ".")
        guard common.count >= 2, suffix == domain || suffix.hasSuffix("." + domain), !PublicSuffixes.contains(suffix)
        else { return nil }
        return suffix
    }
}

/// The route's settings compiled three ways, each opening every check but one, so that an
/// origin, a method or a header is judged by itself, exactly as the proxy would judge it.
private struct Probes {
    let origins: CompiledPolicy
    let methods: CompiledPolicy
    let headers: CompiledPolicy
    let selfOrigins: Set<String>
    let allowsPrivateNetwork: Bool
    /// Any valid origin, for the method and header probes (which allow every origin).
    static let probeOrigin = "https://probe.invalid"

    init(settings: CORSSettings, label: String, selfOrigins: Set<String>) {
        var originOnly = settings
        originOnly.allowMethods = .any
        originOnly.enforce = .on
        var methodOnly = settings
        methodOnly.allowOrigin = [.any]
        methodOnly.allowCredentials = false
        methodOnly.enforce = .on
        var headerOnly = methodOnly
        headerOnly.allowMethods = .any
        origins = CompiledPolicy(settings: originOnly, routePattern: label)
        methods = CompiledPolicy(settings: methodOnly, routePattern: label)
        headers = CompiledPolicy(settings: headerOnly, routePattern: label)
        self.selfOrigins = selfOrigins
        allowsPrivateNetwork = settings.allowPrivateNetwork
    }

    func allows(origin: String) -> Bool {
        let facts = RequestFacts(method: "GET", path: "/", origins: [origin])
        if case .forward(_, _, _, let outcome) = origins.decide(facts, selfOrigins: selfOrigins) {
            return outcome == .allowed || outcome == .sameOrigin
        }
        return false
    }

    func allows(method: String, preflight: Bool) -> Bool {
        let facts =
            preflight
            ? RequestFacts(method: "OPTIONS", path: "/", origins: [Self.probeOrigin], requestMethod: method)
            : RequestFacts(method: method, path: "/", origins: [Self.probeOrigin])
        switch methods.decide(facts, selfOrigins: []) {
        case .preflight: return true
        case .forward(_, _, _, let outcome): return outcome == .allowed
        default: return false
        }
    }

    func allows(header: String) -> Bool {
        let facts = RequestFacts(
            method: "OPTIONS", path: "/", origins: [Self.probeOrigin], requestMethod: "GET", requestHeaders: [header])
        if case .preflight = headers.decide(facts, selfOrigins: []) { return true }
        return false
    }
}

/// The words of the `# needs a decision:` lines.
enum Reasons {
    static let null =
        "sandboxed iframes, file: pages and some redirects send it, so any site can; write allow_origin null only if you mean that"
    static let plainHTTP =
        "plain http: anyone on the network path can act as this origin; allow its https:// origin instead, or list it yourself"
    static let ipAddress =
        "an IP address, not a name: whoever holds the address next is this origin; list it yourself if it is yours"
    static let ipOverHTTP =
        "an IP address over plain http: anyone on the network path can act as it; list it yourself if it is yours"
    static let malformed = "not a valid origin (malformed_origin): a broken client; no conf line allows it"
    static let multipleOrigins = "more than one origin in one request (multiple_origins): no conf line allows it"
    static let authorization =
        "a credential header: every allowed origin could then send credentials; add Authorization to allow_headers yourself if they may"
    static let notAMethod = "not a method name (a token): no conf line can list it"
    static let notAHeader = "not a header name (a token): no conf line can list it"
    static let tooManyHeaders =
        "more than 64 names or 4 KiB of Access-Control-Request-Headers (request_headers_too_large): no conf line allows it"
    static let privateNetwork =
        "Private Network Access asked for: allow_private_network on allows it, for every allowed origin"
}

/// What an `Origin` from the log is, before any conf is asked.
enum OriginClass {
    case allowable(Origin)
    /// The value to show, and why it is held back.
    case held(String, String)

    static func classify(_ sent: String) -> OriginClass {
        let text = sent.trimmingBlanks
        if text == "null" { return .held("null", Reasons.null) }
        guard !text.contains(","), let origin = Origin.parse(text) else {
            return .held(text, text.contains(",") ? Reasons.multipleOrigins : Reasons.malformed)
        }
        let ip = isIPAddress(origin.host)
        let local = isLoopbackOrLocalhost(origin.host)
        if ip && !local {
            return .held(origin.serialized, origin.scheme == "http" ? Reasons.ipOverHTTP : Reasons.ipAddress)
        }
        if origin.scheme == "http" && !local { return .held(origin.serialized, Reasons.plainHTTP) }
        return .allowable(origin)
    }

    static func isIPAddress(_ host: String) -> Bool {
        host.hasPrefix("[") || host.allSatisfy { $0.isASCII && ($0.isNumber || $0 == ".") }
    }

    /// `localhost`, `*.localhost`, 127.0.0.0/8 and `[::1]`, as the conf's credential
    /// warnings count them.
    static func isLoopbackOrLocalhost(_ host: String) -> Bool {
        host == "localhost" || host.hasSuffix(".localhost") || host == "[::1]"
            || (host.hasPrefix("127.") && host.allSatisfy { $0.isNumber || $0 == "." })
    }
}

/// An RFC 9110 token (method and header names).
func isToken(_ text: String) -> Bool {
    !text.isEmpty
        && text.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                return true
            default:
                return "!#$%&'*+-.^_`|~".utf8.contains(byte)
            }
        }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    var trimmingBlanks: String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        return String(drop(while: blank).reversed().drop(while: blank).reversed())
    }
}
