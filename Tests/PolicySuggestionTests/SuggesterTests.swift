import CORSPolicy
import PolicySuggestion
import ProxyConfig
import ProxyLog
import Testing

@Suite struct DigestTests {
    /// Denial lines in both formats count; access and library lines are the proxy's but not
    /// denials; anything else is skipped and counted; blank lines are neither.
    @Test func readsMixedFormatsAndCountsWhatItSkips() {
        var lines = [
            denialLine(origin: "https://a.example", outcome: "denied"),
            denialLine(origin: "https://a.example", second: 5, format: .json),
            "2026-12-06T01:23:07.123Z info access client=1.2.3.4 method=GET target=/ route=/api/ kind=actual status=200 outcome=allowed duration_ms=0.100 bytes_in=0 bytes_out=1",
            "2026-12-06T01:23:07.123Z info listening address=127.0.0.1:8080 port=8080",
            "",
            "   ",
            "npm WARN something else",
            #"{"not":"ours"}"#,
            "2026-12-06T01:23:07.123Z warning denial client=1.2.3.4",
        ]
        lines.append(String(denialLine(origin: "https://b.example").prefix(60)))  // truncated mid-line
        let result = digest(lines)
        #expect(result.linesRead == 10)
        #expect(result.deniedLines == 1)
        #expect(result.reportedLines == 1)
        #expect(result.skippedLines == 4)
        #expect(result.shapes.count == 1)
        #expect(result.shapes.values.first == DenialDigest.Seen(count: 2, first: time(0), last: time(5)))
    }
}

@Suite struct SuggesterTests {
    /// Without a conf: what the reason code names, plus what was never checked.
    @Test func withoutAConfTheReasonDecides() throws {
        let log = digest([
            // An actual GET refused for its origin: the origin; GET is allowed by default.
            denialLine(origin: "https://partner.example.org"),
            // A preflight refused for its origin: method and headers were never checked.
            denialLine(
                kind: "preflight", origin: "https://partner.example.org", requestMethod: "PUT",
                requestHeaders: "Content-Type, X-Trace, authorization"),
            // Refused for its method: the method, and the headers (not checked yet).
            denialLine(
                kind: "preflight", origin: "https://app.example.com", reason: .methodNotAllowed, requestMethod: "PATCH",
                requestHeaders: "X-Trace"),
            // Refused for a header: that one and those after it (the ones before passed).
            denialLine(
                kind: "preflight", origin: "https://app.example.com", reason: .headerNotAllowed,
                detail: "request header X-Late is not in allow_headers for route /api/", requestMethod: "GET",
                requestHeaders: "content-type, X-Late, X-Later"),
            // An actual DELETE refused for its method.
            denialLine(method: "DELETE", origin: "https://app.example.com", reason: .methodNotAllowed),
        ])
        let route = try #require(Suggester(configuration: nil).suggest(log).route("/api/"))
        #expect(route.additions("allow_origin") == ["https://partner.example.org"])
        #expect(route.count("https://partner.example.org") == 2)
        #expect(Set(route.additions("allow_methods")) == ["PUT", "PATCH", "DELETE"])
        #expect(Set(route.additions("allow_headers")) == ["Content-Type", "X-Trace", "X-Late", "X-Later"])
        #expect(route.count("X-Trace") == 2)
        #expect(route.held == ["authorization"])
        #expect(route.current("allow_origin") == [])
    }

    /// Three hosts under one registrable domain become a wildcard over what their parents
    /// share; two stay exact; hosts under a public suffix never group.
    @Test func wildcardsOnlyWhenEarned() throws {
        var lines: [String] = []
        for host in ["a", "b", "c"] { lines.append(denialLine(origin: "https://\(host).shop.example.net")) }
        lines.append(denialLine(origin: "https://a.shop.example.net", second: 9))
        for host in ["x", "y"] { lines.append(denialLine(origin: "https://\(host).two.example")) }
        for user in ["alice", "bob", "carol"] { lines.append(denialLine(origin: "https://\(user).github.io")) }
        for host in ["p", "q.p", "r.p"] { lines.append(denialLine(origin: "https://\(host).mixed.example")) }
        for host in ["m", "n", "o"] { lines.append(denialLine(origin: "https://\(host).ports.example:8443")) }
        lines.append(denialLine(origin: "https://z.ports.example"))
        // The registrable domain itself: a wildcard never covers it, so it stays exact.
        lines.append(denialLine(origin: "https://example.net"))
        let route = try #require(Suggester(configuration: nil).suggest(digest(lines)).route("/api/"))
        let origins = Set(route.additions("allow_origin"))
        #expect(
            origins == [
                "https://*.shop.example.net", "https://x.two.example", "https://y.two.example",
                "https://alice.github.io", "https://bob.github.io", "https://carol.github.io",
                "https://*.mixed.example", "https://*.ports.example:8443", "https://z.ports.example",
                "https://example.net",
            ])
        // A wildcard's count is the sum over its hosts; it lists them.
        #expect(route.count("https://*.shop.example.net") == 4)
        let wildcard = try #require(
            route.directives.first?.additions.first { $0.value == "https://*.shop.example.net" })
        #expect(wildcard.hosts.map(\.host) == ["a.shop.example.net", "b.shop.example.net", "c.shop.example.net"])
        #expect(wildcard.seen.first == time(0) && wildcard.seen.last == time(9))
        // Ordered by count, then by value.
        #expect(route.additions("allow_origin").first == "https://*.shop.example.net")
    }

    @Test(arguments: [
        ("null", true),
        ("http://app.example.com", true),
        ("https://203.0.113.7", true),
        ("http://10.0.0.5:8080", true),
        ("https://[2001:db8::1]", true),
        ("http://localhost:3000", false),
        ("http://dev.localhost", false),
        ("http://127.0.0.1:5173", false),
        ("http://[::1]:8080", false),
        ("https://127.0.0.1", false),
        ("chrome-extension://abcdefghijklmnop", false),
    ])
    func heldBackOrigins(_ origin: String, _ held: Bool) throws {
        let route = try #require(
            Suggester(configuration: nil).suggest(digest([denialLine(origin: origin)])).route("/api/"))
        #expect(route.held.isEmpty != held, "\(route)")
        #expect(route.additions("allow_origin").isEmpty == held, "\(route)")
    }

    /// What no allow_* line can allow is held back with its reason, never put on a line.
    @Test func unallowableRequestsAreHeldBack() throws {
        let log = digest([
            denialLine(origin: "https://a.example https://b.example", reason: .multipleOrigins),
            denialLine(origin: "https://bad.example/", reason: .malformedOrigin),
            denialLine(
                kind: "preflight", origin: "https://app.example.com", reason: .requestHeadersTooLarge,
                requestMethod: "GET", requestHeaders: "a, b"),
            denialLine(
                kind: "preflight", origin: "https://app.example.com", reason: .privateNetworkNotAllowed,
                requestMethod: "GET"),
        ])
        let route = try #require(Suggester(configuration: nil).suggest(log).route("/api/"))
        #expect(route.directives.isEmpty)
        #expect(
            Set(route.held) == [
                "https://a.example https://b.example", "https://bad.example/", "Access-Control-Request-Headers",
                "Access-Control-Request-Private-Network",
            ])
        #expect(
            route.heldBack.first { $0.value == "Access-Control-Request-Private-Network" }?.reason.contains(
                "allow_private_network on") == true)
    }

    /// `--min-count` drops origins (after grouping), methods, headers and held-back items.
    @Test func minCountAppliesToEveryItem() throws {
        var lines: [String] = []
        for host in ["a", "b", "c"] { lines.append(denialLine(origin: "https://\(host).shop.example.net")) }
        lines.append(denialLine(origin: "https://once.example"))
        lines += Array(repeating: denialLine(origin: "https://twice.example"), count: 2)
        lines += Array(repeating: denialLine(origin: "null"), count: 2)
        lines.append(denialLine(origin: "http://plain.example"))
        lines += Array(
            repeating: denialLine(
                kind: "preflight", origin: "https://twice.example", requestMethod: "PUT", requestHeaders: "X-One"),
            count: 1)
        let route = try #require(Suggester(configuration: nil, minCount: 2).suggest(digest(lines)).route("/api/"))
        #expect(Set(route.additions("allow_origin")) == ["https://*.shop.example.net", "https://twice.example"])
        #expect(route.count("https://twice.example") == 3)
        #expect(route.additions("allow_methods") == [])
        #expect(route.additions("allow_headers") == [])
        #expect(route.held == ["null"])
        // Nothing left at all: the route is not printed.
        #expect(Suggester(configuration: nil, minCount: 10).suggest(digest(lines)).routes.isEmpty)
    }

    @Test func routeFilter() throws {
        let log = digest([
            denialLine(route: "/api/", origin: "https://a.example"),
            denialLine(route: "= /exact", origin: "https://b.example"),
        ])
        #expect(Suggester(configuration: nil, route: "=/exact").suggest(log).routes.map(\.label) == ["= /exact"])
        #expect(Suggester(configuration: nil).suggest(log).routes.map(\.label) == ["/api/", "= /exact"])
        let none = Suggester(configuration: nil, route: "/other/").suggest(log)
        #expect(none.routes.isEmpty)
        #expect(none.emptyReason == "no denial lines for route /other/")
    }

    /// With a conf, every logged request is decided again: what the conf already allows
    /// (exactly, by a wildcard, by a regex, by `*`) is not added.
    @Test func withAConfOnlyWhatIsStillMissing() throws {
        let configuration = try conf(
            """
            listen 127.0.0.1:0
            upstream api http://127.0.0.1:3000
            cors {
                allow_origin https://app.example.com https://*.known.example "~^https://pr-[0-9]+\\.example\\.com$"
                allow_methods GET HEAD POST PUT
                allow_headers Content-Type
                allow_credentials on
            }
            route /api/ {
                upstream api
                enforce report
            }
            route /open/ {
                upstream api
                allow_methods *
                allow_headers *
                allow_credentials off
            }
            route /raw/ {
                upstream api
                cors off
            }
            """)
        let log = digest([
            denialLine(method: "DELETE", origin: "https://app.example.com", reason: .methodNotAllowed),
            denialLine(origin: "https://x.known.example"),
            denialLine(origin: "https://pr-42.example.com"),
            denialLine(origin: "https://new.example"),
            denialLine(
                kind: "preflight", origin: "https://new.example", requestMethod: "PUT",
                requestHeaders: "content-type, X-New, Authorization"),
            denialLine(
                route: "/open/", kind: "preflight", origin: "https://app.example.com", reason: .headerNotAllowed,
                requestMethod: "WHATEVER", requestHeaders: "X-Any, Authorization"),
            denialLine(route: "/raw/", origin: "https://app.example.com"),
            denialLine(route: "/gone/", origin: "https://gone.example"),
        ])
        let suggestion = Suggester(configuration: configuration).suggest(log)
        let api = try #require(suggestion.route("/api/"))
        #expect(api.additions("allow_origin") == ["https://new.example"])
        #expect(api.count("https://new.example") == 2)
        #expect(
            api.current("allow_origin") == [
                "https://app.example.com", "https://*.known.example", "~^https://pr-[0-9]+\\.example\\.com$",
            ])
        #expect(api.additions("allow_methods") == ["DELETE"])
        #expect(api.current("allow_methods") == ["GET", "HEAD", "POST", "PUT"])
        #expect(api.additions("allow_headers") == ["X-New"])
        #expect(api.current("allow_headers") == ["Content-Type"])
        #expect(api.held == ["Authorization"])
        // `*` covers every method and header but Authorization.
        let open = try #require(suggestion.route("/open/"))
        #expect(open.directives.isEmpty)
        #expect(open.held == ["Authorization"])
        // A route that is pass-through now, and one the conf does not have.
        #expect(suggestion.route("/raw/")?.note?.contains("cors off") == true)
        #expect(suggestion.route("/raw/")?.isEmpty == true)
        let gone = try #require(suggestion.route("/gone/"))
        #expect(gone.note?.contains("not in the conf") == true)
        #expect(gone.additions("allow_origin") == ["https://gone.example"])
    }

    @Test func nothingToSuggest() throws {
        let configuration = try conf(
            "listen 127.0.0.1:0\nupstream api http://h:1\nroute /api/ {\n upstream api\n allow_origin *\n}\n")
        let already = Suggester(configuration: configuration).suggest(digest([denialLine(origin: "https://a.example")]))
        #expect(already.routes.isEmpty)
        #expect(already.emptyReason == "the conf already allows every request the log shows denied")
        let empty = Suggester(configuration: nil).suggest(digest(["hello"]))
        #expect(empty.emptyReason == "the log has no denial lines")
        #expect(empty.skippedLines == 1)
    }
}
