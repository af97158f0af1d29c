import HeaderFields
import Testing

@testable import CORSPolicy

// MARK: - Fixtures

func entries(_ texts: String...) -> [OriginEntry] {
    texts.compactMap { try? OriginEntry.parse($0).get() }
}

/// The reference conf's `/api/` route (docs/CONFIG.md, top): listed origin and wildcard, credentials on.
let apiSettings: CORSSettings = {
    var s = CORSSettings()
    s.allowOrigin = entries("https://app.example.com", "https://*.example.com")
    s.allowHeaders = .list(["Content-Type", "Authorization"])
    s.exposeHeaders = .list(["X-Request-Id"])
    s.allowCredentials = true
    s.maxAgeMilliseconds = 600_000
    return s
}()

func with(_ base: CORSSettings = apiSettings, _ change: (inout CORSSettings) -> Void) -> CORSSettings {
    var s = base
    change(&s)
    return s
}

let publicSettings = with(CORSSettings()) { $0.allowOrigin = [.any] }

let app = "https://app.example.com"
let evil = "https://evil.example"
let vary = HeaderField("Vary", "Origin")
let preflightVary = HeaderField("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
let appACAO = HeaderField("Access-Control-Allow-Origin", app)
let acac = HeaderField("Access-Control-Allow-Credentials", "true")
let aceh = HeaderField("Access-Control-Expose-Headers", "X-Request-Id")
let acam = HeaderField("Access-Control-Allow-Methods", "GET, HEAD, POST")
let acah = HeaderField("Access-Control-Allow-Headers", "Content-Type, Authorization")
let maxAge = HeaderField("Access-Control-Max-Age", "600")

func actual(
    _ method: String = "GET", _ origins: [String] = [app], host: String? = "proxy.test:8080", scheme: Scheme = .http
) -> RequestFacts {
    RequestFacts(method: method, path: "/api/x", origins: origins, host: host, scheme: scheme)
}

func preflight(
    _ origin: String = app, method: String = "POST", headers: [String] = [], privateNetwork: Bool = false
) -> RequestFacts {
    RequestFacts(
        method: "OPTIONS", path: "/api/x", origins: [origin], requestMethod: method, requestHeaders: headers,
        privateNetwork: privateNetwork, host: "proxy.test:8080", scheme: .http)
}

struct Case: CustomTestStringConvertible, Sendable {
    let name: String
    let settings: CORSSettings
    let facts: RequestFacts
    let selfOrigins: Set<String>
    let expected: Decision
    var testDescription: String { name }

    init(
        _ name: String, _ facts: RequestFacts, selfOrigins: Set<String> = [], _ expected: Decision
    ) {
        self.init(name, apiSettings, facts, selfOrigins: selfOrigins, expected)
    }

    init(
        _ name: String, _ settings: CORSSettings, _ facts: RequestFacts, selfOrigins: Set<String> = [],
        _ expected: Decision
    ) {
        self.name = name
        self.settings = settings
        self.facts = facts
        self.selfOrigins = selfOrigins
        self.expected = expected
    }
}

func forward(_ outcome: Outcome, _ headers: [HeaderField] = [], vary: Bool = true) -> Decision {
    .forward(addHeaders: headers, stripUpstreamCORS: true, varyOrigin: vary, outcome: outcome)
}

func denied(_ reason: DenialReason, _ detail: String, preflight: Bool = false) -> Decision {
    .deny(status: 403, headers: [preflight ? preflightVary : vary], denial: Denial(reason, detail))
}

// MARK: - docs/DESIGN.md "Request handling", one case per row or rule

@Test(arguments: [
    // no Origin, or same-origin
    Case("no Origin", actual("GET", []), forward(.noOrigin)),
    Case("empty Origin counts as absent", actual("GET", [""]), forward(.noOrigin)),
    Case("empty Origin, * route: no Vary", publicSettings, actual("GET", [""]), forward(.noOrigin, vary: false)),
    Case(
        "OPTIONS+ACRM without Origin is not a preflight",
        RequestFacts(method: "OPTIONS", path: "/", requestMethod: "PUT"), forward(.noOrigin)),
    Case("same origin by Host", actual("POST", ["http://proxy.test:8080"]), forward(.sameOrigin)),
    Case(
        "same origin, Host with default port and case", actual("DELETE", ["http://proxy.test"], host: "Proxy.Test:80"),
        forward(.sameOrigin)),
    Case(
        "same origin, https listener", actual("PUT", ["https://proxy.test"], host: "proxy.test", scheme: .https),
        forward(.sameOrigin)),
    Case(
        "Host matches but scheme does not: cross-origin", actual("POST", ["https://proxy.test"], host: "proxy.test"),
        denied(.originNotAllowed, "origin https://proxy.test is not in allow_origin for route /api/")),
    Case(
        "same origin, IPv6 Host in another spelling", actual("POST", ["http://[::1]:8080"], host: "[0:0::1]:8080"),
        forward(.sameOrigin)),
    Case(
        "same origin, IPv6 Host with default port", actual("POST", ["http://[::1]"], host: "[::1]:80"),
        forward(.sameOrigin)),
    Case(
        "Host of another port is cross-origin", actual("POST", ["http://proxy.test:8081"]),
        denied(.originNotAllowed, "origin http://proxy.test:8081 is not in allow_origin for route /api/")),
    Case(
        "same origin wins over a listed origin", with { $0.allowOrigin = entries("http://proxy.test:8080") },
        actual("POST", ["http://proxy.test:8080"]), forward(.sameOrigin)),
    Case(
        "listed IPv6 origin, same origin", with { $0.allowOrigin = entries("http://[::1]:8080") },
        actual("POST", ["http://[::1]:8080"], host: "[::1]:8080"), forward(.sameOrigin)),
    Case(
        "listed IPv6 origin, cross origin", with { $0.allowOrigin = entries("http://[::1]:8080") },
        actual("GET", ["http://[::1]:8080"]),
        forward(.allowed, [HeaderField("Access-Control-Allow-Origin", "http://[::1]:8080"), acac, aceh])),
    Case(
        "same origin by self_origin", actual("PUT", ["https://public.example.net"]),
        selfOrigins: ["https://public.example.net"], forward(.sameOrigin)),
    Case(
        "self_origin compared normalised", actual("PUT", ["HTTPS://Public.example.net:443"]),
        selfOrigins: ["https://public.example.net"], forward(.sameOrigin)),
    Case(
        "same-origin OPTIONS with ACRM is forwarded",
        RequestFacts(
            method: "OPTIONS", path: "/", origins: ["http://proxy.test:8080"], requestMethod: "PUT",
            host: "proxy.test:8080"), forward(.sameOrigin)),

    // Origin shape
    Case(
        "two Origin lines", actual("GET", [app, app]),
        denied(.multipleOrigins, "the request has 2 Origin lines; a request carries exactly one origin (route /api/)")),
    Case(
        "two Origin lines, one empty", actual("GET", [app, ""]),
        denied(.multipleOrigins, "the request has 2 Origin lines; a request carries exactly one origin (route /api/)")),
    Case(
        "space-separated values", actual("GET", ["\(app) https://b.example.com"]),
        denied(
            .multipleOrigins,
            "Origin 'https://app.example.com https://b.example.com' holds more than one value; a request carries exactly one origin (route /api/)"
        )),
    Case(
        "comma-separated values", publicSettings, actual("GET", ["\(app),\(app)"]),
        .deny(
            status: 403, headers: [],
            denial: Denial(
                .multipleOrigins,
                "Origin 'https://app.example.com,https://app.example.com' holds more than one value; a request carries exactly one origin (route /api/)"
            ))),
    Case(
        "malformed origin", actual("GET", ["https://h:0443"]),
        denied(
            .malformedOrigin,
            "origin https://h:0443 is not a valid serialized origin (the port must be 1 to 65535 without leading zeros) for route /api/"
        )),
    Case(
        "malformed origin is not allowed by *", publicSettings, actual("GET", ["https://h:"]),
        .deny(
            status: 403, headers: [],
            denial: Denial(
                .malformedOrigin,
                "origin https://h: is not a valid serialized origin (the port after ':' must be a number from 1 to 65535) for route /api/"
            ))),
    Case(
        "surrounding whitespace trimmed, ACAO as sent", actual("GET", [" \(app) "]),
        forward(.allowed, [appACAO, acac, aceh])),

    // actual requests
    Case("allowed actual", actual("GET"), forward(.allowed, [appACAO, acac, aceh])),
    Case(
        "allowed by wildcard, ACAO exactly as sent", actual("POST", ["https://A.example.com"]),
        forward(.allowed, [HeaderField("Access-Control-Allow-Origin", "https://A.example.com"), acac, aceh])),
    Case(
        "bare suffix is not the wildcard", actual("GET", ["https://example.com"]),
        denied(.originNotAllowed, "origin https://example.com is not in allow_origin for route /api/")),
    Case(
        "origin not allowed, enforce on", actual("GET", [evil]),
        denied(.originNotAllowed, "origin https://evil.example is not in allow_origin for route /api/")),
    Case(
        "origin not allowed, enforce report", with { $0.enforce = .report }, actual("GET", [evil]),
        forward(
            .reported(Denial(.originNotAllowed, "origin https://evil.example is not in allow_origin for route /api/")))),
    Case(
        "origin not allowed, enforce off", with { $0.enforce = .off }, actual("GET", [evil]),
        forward(
            .unenforced(Denial(.originNotAllowed, "origin https://evil.example is not in allow_origin for route /api/"))
        )),
    Case(
        "actual method not allowed", actual("PUT"),
        denied(.methodNotAllowed, "method PUT is not in allow_methods (GET HEAD POST) for route /api/")),
    Case(
        "methods are case-sensitive", actual("get"),
        denied(.methodNotAllowed, "method get is not in allow_methods (GET HEAD POST) for route /api/")),
    Case(
        "OPTIONS without ACRM is an actual request", actual("OPTIONS"),
        denied(.methodNotAllowed, "method OPTIONS is not in allow_methods (GET HEAD POST) for route /api/")),
    Case(
        "OPTIONS without ACRM, allowed", with { $0.allowMethods = .list(["GET", "OPTIONS"]) }, actual("OPTIONS"),
        forward(.allowed, [appACAO, acac, aceh])),
    Case(
        "no expose, no credentials",
        with {
            $0.exposeHeaders = .list([])
            $0.allowCredentials = false
        }, actual(),
        forward(.allowed, [appACAO])),
    Case(
        "expose_headers * sends *",
        with {
            $0.exposeHeaders = .any
            $0.allowCredentials = false
        }, actual(),
        forward(.allowed, [appACAO, HeaderField("Access-Control-Expose-Headers", "*")])),

    // * origins
    Case(
        "* without credentials sends *", publicSettings, actual("GET", [evil]),
        forward(.allowed, [HeaderField("Access-Control-Allow-Origin", "*")], vary: false)),
    Case(
        "* allows null", publicSettings, actual("GET", ["null"]),
        forward(.allowed, [HeaderField("Access-Control-Allow-Origin", "*")], vary: false)),
    Case(
        "* with credentials echoes (refused at load, still safe)", with(publicSettings) { $0.allowCredentials = true },
        actual("GET", [evil]),
        forward(.allowed, [HeaderField("Access-Control-Allow-Origin", evil), acac])),
    Case(
        "* route, method denied: no Vary", publicSettings, actual("PUT", [evil]),
        .deny(
            status: 403, headers: [],
            denial: Denial(
                .methodNotAllowed,
                "method PUT is not in allow_methods (GET HEAD POST) for route /api/"))),
    Case(
        "null not listed", actual("GET", ["null"]),
        denied(
            .originNotAllowed, "origin null is not in allow_origin for route /api/ (only a listed null or * allows it)")
    ),
    Case(
        "null listed", with { $0.allowOrigin = [.null] }, actual("GET", ["null"]),
        forward(.allowed, [HeaderField("Access-Control-Allow-Origin", "null"), acac, aceh])),
    Case(
        "wildcard never matches null", with { $0.allowOrigin = entries("https://*.example.com", "~.*") },
        actual("GET", ["null"]),
        denied(
            .originNotAllowed, "origin null is not in allow_origin for route /api/ (only a listed null or * allows it)")
    ),

    // preflights
    Case(
        "allowed preflight", preflight(headers: ["content-type"]),
        .preflight(status: 204, headers: [appACAO, acam, acah, acac, maxAge, preflightVary])),
    Case(
        "allowed preflight without requested headers", preflight(),
        .preflight(status: 204, headers: [appACAO, acam, acac, maxAge, preflightVary])),
    Case(
        "preflight_status 200 carries Content-Length: 0", with { $0.preflightStatus = 200 }, preflight(),
        .preflight(
            status: 200, headers: [appACAO, acam, acac, maxAge, preflightVary, HeaderField("Content-Length", "0")])),
    Case(
        "preflight, origin not allowed", preflight(evil),
        denied(.originNotAllowed, "origin https://evil.example is not in allow_origin for route /api/", preflight: true)
    ),
    Case(
        "preflight denial ignores enforce report", with { $0.enforce = .report }, preflight(evil),
        denied(.originNotAllowed, "origin https://evil.example is not in allow_origin for route /api/", preflight: true)
    ),
    Case(
        "preflight, malformed origin", preflight("https://user@app.example.com"),
        denied(
            .malformedOrigin,
            "origin https://user@app.example.com is not a valid serialized origin (an origin has no user name or password; remove the part before '@') for route /api/",
            preflight: true)),
    Case(
        "preflight, method not allowed", preflight(method: "PUT"),
        denied(.methodNotAllowed, "method PUT is not in allow_methods (GET HEAD POST) for route /api/", preflight: true)
    ),
    Case(
        "preflight, method case-sensitive", preflight(method: "post"),
        denied(
            .methodNotAllowed, "method post is not in allow_methods (GET HEAD POST) for route /api/", preflight: true)),
    Case(
        "preflight, header not allowed", preflight(headers: ["content-type, x-custom"]),
        denied(.headerNotAllowed, "request header x-custom is not in allow_headers for route /api/", preflight: true)),
    Case(
        "header names are case-insensitive", preflight(headers: ["CONTENT-TYPE,Authorization"]),
        .preflight(status: 204, headers: [appACAO, acam, acah, acac, maxAge, preflightVary])),
    Case(
        "ACRH on several lines, empty items ignored", preflight(headers: [" , content-type,, ", "authorization", ""]),
        .preflight(status: 204, headers: [appACAO, acam, acah, acac, maxAge, preflightVary])),
    Case(
        "ACRH with only empty items requests nothing", preflight(headers: [" , ,"]),
        .preflight(status: 204, headers: [appACAO, acam, acac, maxAge, preflightVary])),
    Case(
        "Private Network Access asked, off", preflight(privateNetwork: true),
        denied(
            .privateNetworkNotAllowed,
            "Private Network Access was requested but allow_private_network is off for route /api/", preflight: true)),
    Case(
        "Private Network Access asked, on", with { $0.allowPrivateNetwork = true }, preflight(privateNetwork: true),
        .preflight(
            status: 204,
            headers: [
                appACAO, acam, acac, maxAge,
                HeaderField("Access-Control-Allow-Private-Network", "true"), preflightVary,
            ])),
    Case(
        "Private Network Access on, not asked", with { $0.allowPrivateNetwork = true }, preflight(),
        .preflight(status: 204, headers: [appACAO, acam, acac, maxAge, preflightVary])),
    Case(
        "max_age rounded down", with { $0.maxAgeMilliseconds = 1500 }, preflight(),
        .preflight(
            status: 204, headers: [appACAO, acam, acac, HeaderField("Access-Control-Max-Age", "1"), preflightVary])),
    Case(
        "max_age 0 sends 0", with { $0.maxAgeMilliseconds = 0 }, preflight(),
        .preflight(
            status: 204, headers: [appACAO, acam, acac, HeaderField("Access-Control-Max-Age", "0"), preflightVary])),
    Case(
        "no max_age, no credentials",
        with {
            $0.maxAgeMilliseconds = nil
            $0.allowCredentials = false
        }, preflight(),
        .preflight(status: 204, headers: [appACAO, acam, preflightVary])),

    // `*` in methods and headers (credentials off: `*` with credentials is refused at load)
    Case(
        "allow_methods * echoes the method", with(publicSettings) { $0.allowMethods = .any },
        preflight(evil, method: "PATCH"),
        .preflight(
            status: 204,
            headers: [
                HeaderField("Access-Control-Allow-Origin", "*"),
                HeaderField("Access-Control-Allow-Methods", "PATCH"), preflightVary,
            ])),
    Case(
        "allow_methods * never echoes a non-token", with(publicSettings) { $0.allowMethods = .any },
        preflight(evil, method: "PA TCH"),
        .deny(
            status: 403, headers: [preflightVary],
            denial: Denial(
                .methodNotAllowed,
                "method PA TCH is not in allow_methods (*) for route /api/"))),
    Case(
        "allow_headers * echoes names as spelled, deduplicated", with(publicSettings) { $0.allowHeaders = .any },
        preflight(evil, headers: ["X-A, x-b", "x-a, X-B, content-type"]),
        .preflight(
            status: 204,
            headers: [
                HeaderField("Access-Control-Allow-Origin", "*"), acam,
                HeaderField("Access-Control-Allow-Headers", "X-A, x-b, content-type"),
                preflightVary,
            ])),
    Case(
        "allow_headers * does not cover Authorization", with(publicSettings) { $0.allowHeaders = .any },
        preflight(evil, headers: ["x-a, authorization"]),
        .deny(
            status: 403, headers: [preflightVary],
            denial: Denial(
                .headerNotAllowed,
                "Authorization must be listed by name in allow_headers; '*' does not cover it (route /api/)"))),
    Case(
        "allow_headers * Authorization", with(publicSettings) { $0.allowHeaders = .list(["*", "Authorization"]) },
        preflight(evil, headers: ["x-a, authorization"]),
        .preflight(
            status: 204,
            headers: [
                HeaderField("Access-Control-Allow-Origin", "*"), acam,
                HeaderField("Access-Control-Allow-Headers", "x-a, authorization"),
                preflightVary,
            ])),
])
func requestTableRow(_ c: Case) {
    let policy = CompiledPolicy(settings: c.settings, routePattern: "/api/")
    let decision = policy.decide(c.facts, selfOrigins: c.selfOrigins)
    #expect(decision == c.expected)
}

// MARK: - ACRH caps

@Test(arguments: [
    (Array(repeating: "content-type", count: 64), true),
    (Array(repeating: "content-type", count: 65), false),
    (
        [
            Array(repeating: "content-type", count: 40).joined(separator: ","),
            Array(repeating: "Content-Type", count: 25).joined(separator: ", "),
        ], false
    ),
    ([String(repeating: "a", count: 4096)], true),
    ([String(repeating: "a", count: 4097)], false),
])
func requestHeaderCaps(_ lines: [String], _ allowed: Bool) {
    let settings = with { $0.allowHeaders = .list(["Content-Type", String(repeating: "a", count: 4096)]) }
    let policy = CompiledPolicy(settings: settings, routePattern: "/api/")
    let decision = policy.decide(preflight(headers: lines), selfOrigins: [])
    if allowed {
        #expect(decision.summary == .allowed)
    } else {
        #expect(decision.summary == .denied(.requestHeadersTooLarge))
        #expect(
            decision.responseHeaderFields == [
                "Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
            ])
    }
}

@Test func tooLargeWordsNameTheLimit() {
    let policy = CompiledPolicy(settings: apiSettings, routePattern: "/api/")
    let many = policy.decide(preflight(headers: Array(repeating: "x-unknown", count: 70)), selfOrigins: [])
    #expect(
        many.denial
            == Denial(
                .requestHeadersTooLarge,
                "Access-Control-Request-Headers lists 70 names (at most 64) for route /api/"))
    let long = policy.decide(
        preflight(headers: [String(repeating: "b", count: 4000), String(repeating: "c", count: 100)]),
        selfOrigins: [])
    #expect(
        long.denial
            == Denial(
                .requestHeadersTooLarge,
                "Access-Control-Request-Headers is 4101 bytes (at most 4096) for route /api/"))
}

// MARK: - No route

@Test(arguments: [
    Case(
        "allowed origin gets the actual-response headers", actual("GET"),
        .deny(status: 404, headers: [appACAO, acac, aceh, vary], denial: nil)),
    Case(
        "allowed origin, preflight shape", preflight(method: "DELETE"),
        .deny(status: 404, headers: [appACAO, acac, aceh, vary], denial: nil)),
    Case("origin not allowed", actual("GET", [evil]), .deny(status: 404, headers: [vary], denial: nil)),
    Case("malformed origin", actual("GET", ["https://h:"]), .deny(status: 404, headers: [vary], denial: nil)),
    Case("no origin", actual("GET", []), .deny(status: 404, headers: [vary], denial: nil)),
    Case("same origin", actual("GET", ["http://proxy.test:8080"]), .deny(status: 404, headers: [vary], denial: nil)),
    Case(
        "* top-level", publicSettings, actual("GET", [evil]),
        .deny(status: 404, headers: [HeaderField("Access-Control-Allow-Origin", "*")], denial: nil)),
    Case("* top-level, no origin", publicSettings, actual("GET", []), .deny(status: 404, headers: [], denial: nil)),
    Case("no allow_origin at all", CORSSettings(), actual("GET"), .deny(status: 404, headers: [vary], denial: nil)),
])
func noRoute(_ c: Case) {
    let policy = CompiledPolicy(settings: c.settings, routePattern: "-")
    let decision = policy.decideNoRoute(c.facts, selfOrigins: c.selfOrigins)
    #expect(decision == c.expected)
    #expect(decision.summary == .noRoute)
}

// MARK: - Rendering

@Test func renderer() {
    let policy = CompiledPolicy(settings: apiSettings, routePattern: "/api/")
    let allowed = policy.decide(actual("GET"), selfOrigins: [])
    #expect(allowed.summary == .allowed)
    #expect(allowed.summary.description == "allowed")
    #expect(
        allowed.responseHeaderFields == [
            "Access-Control-Allow-Origin: https://app.example.com",
            "Access-Control-Allow-Credentials: true",
            "Access-Control-Expose-Headers: X-Request-Id",
            "Vary: Origin",
        ])
    let refused = policy.decide(preflight(evil), selfOrigins: [])
    #expect(refused.summary.description == "denied (origin_not_allowed)")
    #expect(!refused.summary.isAllowed)
    #expect(refused.localStatus == 403)
    #expect(Decision.passThrough.responseHeaderFields.isEmpty)
    let reported = CompiledPolicy(settings: with { $0.enforce = .report }, routePattern: "/api/")
        .decide(actual("GET", [evil]), selfOrigins: [])
    #expect(reported.summary == .reported(.originNotAllowed))
    #expect(reported.responseHeaderFields == ["Vary: Origin"])
    #expect(reported.localStatus == nil)
}
