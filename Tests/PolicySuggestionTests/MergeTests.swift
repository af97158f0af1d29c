import CORSPolicy
import PolicySuggestion
import ProxyConfig
import ProxyLog
import TestSupport
import Testing

/// The fragment goes into the conf as it is, `check` accepts the result without a new
/// warning, and every logged request that held nothing back is then allowed, while what
/// was held back is still refused.
@Suite struct MergeTests {
    static let confText = """
        listen 127.0.0.1:0
        upstream api http://127.0.0.1:3000
        cors {
            allow_origin https://app.example.com
            allow_credentials on
        }
        route /api/ {
            upstream api
            enforce report
        }
        route = /exact {
            upstream api
            allow_origin "~^https://pr-[0-9]{1,4}\\.example\\.com$"
            allow_headers Content-Type
            enforce report
        }
        """

    struct Request {
        var route: String
        var path: Substring
        var kind: String
        var method: String
        var origin: String
        var requestMethod: String?
        var requestHeaders: String?
        /// Something in it is held back: it must stay refused.
        var held: Bool
    }

    static let requests: [Request] = [
        Request(
            route: "/api/", path: "/api/x", kind: "actual", method: "GET", origin: "https://a.shop.example.net",
            held: false),
        Request(
            route: "/api/", path: "/api/x", kind: "actual", method: "GET", origin: "https://b.shop.example.net",
            held: false),
        Request(
            route: "/api/", path: "/api/x", kind: "preflight", method: "OPTIONS", origin: "https://c.shop.example.net",
            requestMethod: "PATCH", requestHeaders: "content-type, x-trace", held: false),
        Request(
            route: "/api/", path: "/api/x", kind: "actual", method: "DELETE", origin: "https://app.example.com",
            held: false),
        Request(
            route: "/api/", path: "/api/x", kind: "actual", method: "GET", origin: "https://alice.github.io",
            held: false),
        Request(
            route: "/api/", path: "/api/x", kind: "actual", method: "GET", origin: "https://bob.github.io", held: false),
        Request(
            route: "/api/", path: "/api/x", kind: "actual", method: "GET", origin: "https://carol.github.io",
            held: false),
        Request(
            route: "/api/", path: "/api/x", kind: "actual", method: "GET", origin: "http://localhost:5173", held: false),
        Request(route: "/api/", path: "/api/x", kind: "actual", method: "GET", origin: "null", held: true),
        Request(
            route: "/api/", path: "/api/x", kind: "actual", method: "GET", origin: "http://plain.example", held: true),
        Request(
            route: "/api/", path: "/api/x", kind: "actual", method: "GET", origin: "https://198.51.100.4", held: true),
        Request(
            route: "/api/", path: "/api/x", kind: "preflight", method: "OPTIONS", origin: "https://app.example.com",
            requestMethod: "GET", requestHeaders: "Authorization", held: true),
        Request(
            route: "= /exact", path: "/exact", kind: "preflight", method: "OPTIONS", origin: "https://pr-7.example.com",
            requestMethod: "PUT", requestHeaders: "X-Exact", held: false),
        Request(
            route: "= /exact", path: "/exact", kind: "actual", method: "GET", origin: "https://other.example",
            held: false),
    ]

    func facts(_ request: Request) -> RequestFacts {
        request.kind == "preflight"
            ? RequestFacts(
                method: "OPTIONS", path: request.path, origins: [request.origin], requestMethod: request.requestMethod,
                requestHeaders: request.requestHeaders.map { [$0] } ?? [])
            : RequestFacts(method: request.method, path: request.path, origins: [request.origin])
    }

    func allowed(_ request: Request, by configuration: ProxyConfiguration) -> Bool {
        guard let route = configuration.routes.match(path: request.path), let settings = route.cors else {
            return false
        }
        var enforced = settings
        enforced.enforce = .on
        switch CompiledPolicy(settings: enforced, routePattern: route.label).decide(
            facts(request), selfOrigins: configuration.selfOrigins)
        {
        case .preflight: return true
        case .forward(_, _, _, let outcome): return outcome == .allowed
        default: return false
        }
    }

    /// The log these requests leave under `conf`, each decided as the proxy decides it.
    func log(format: LogFormat) throws -> [String] {
        let configuration = try conf(Self.confText)
        var lines: [String] = []
        for (index, request) in Self.requests.enumerated() {
            let route = try #require(configuration.routes.match(path: request.path))
            let decision = CompiledPolicy(settings: try #require(route.cors), routePattern: route.label).decide(
                facts(request), selfOrigins: [])
            let denial = try #require(decision.denialForTest, "\(request.origin) was not denied")
            lines.append(
                denialLine(
                    route: request.route, kind: request.kind, method: request.method, origin: request.origin,
                    reason: denial.reason, detail: denial.detail, requestMethod: request.requestMethod,
                    requestHeaders: request.requestHeaders, second: Int64(index),
                    format: index % 2 == 0 ? format : .json))
        }
        return lines
    }

    @Test(arguments: LogFormat.allCases) func mergedConfAllowsWhatWasNotHeldBack(_ format: LogFormat) throws {
        let original = try conf(Self.confText)
        for request in Self.requests { #expect(!allowed(request, by: original), "\(request.origin)") }

        let suggestion = Suggester(configuration: original).suggest(digest(try log(format: format)))
        let text = suggestion.text(log: "proxy.log", configuration: "proxy.conf")
        let merged = mergeSuggestion(text, into: Self.confText)
        let result = ProxyConfig.load(text: merged, path: "proxy.conf", environment: [:])
        #expect(result.diagnostics.map(\.description) == [], "\(merged)")
        let configuration = try #require(result.configuration, "\(merged)")
        for request in Self.requests {
            #expect(
                allowed(request, by: configuration) == !request.held,
                "\(request.origin) \(request.requestMethod ?? request.method) \(request.requestHeaders ?? "")\n\(text)")
        }
        // Not blindly: no wildcard over github.io, no `*`.
        #expect(!merged.contains("*.github.io"))
        #expect(merged.contains("https://*.shop.example.net"))
    }
}

extension Decision {
    /// The denial of a denied or reported request.
    var denialForTest: Denial? {
        switch self {
        case .deny(_, _, let denial): return denial
        case .forward(_, _, _, let outcome): return outcome.denial
        default: return nil
        }
    }
}
