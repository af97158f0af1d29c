import Testing

@testable import ProxyConfig

/// Every warning of docs/CONFIG.md §10: the conf still loads.
@Suite struct WarningTests {
    static let cases: [Golden] = [
        Golden(
            "regex with unescaped dot in host", head + "cors {\n  allow_origin ~^https://app.example\\.com$\n}\n",
            [
                "proxy.conf:4:16: warning: the regex has an unescaped '.' in the host, which matches any character (example.com also matches exampleXcom); write '\\.'"
            ]),
        Golden(
            "regex fully escaped: no warning",
            head + "cors {\n  allow_origin ~^https://pr-[0-9]+\\.preview\\.example\\.com$\n}\n", []),
        Golden(
            "regex .* and . in a class: no warning",
            head
                + "cors {\n  allow_origin \"~^https://.*\\.example\\.com(:[0-9]+)?$\" ~^https://[a.]+\\.example\\.org$\n}\n",
            []),
        Golden(
            "regex dot after the port: no warning",
            head + "cors {\n  allow_origin ~^https://a\\.example\\.com:8.43$\n}\n", []),
        Golden(
            "null with credentials",
            head + "cors {\n  allow_origin https://a.example.com null\n  allow_credentials on\n}\n",
            [
                "proxy.conf:4:38: warning: 'null' in allow_origin with allow_credentials on lets sandboxed iframes and local files make credentialed requests; remove null or turn credentials off"
            ]),
        Golden("null without credentials: no warning", head + "cors {\n  allow_origin null\n}\n", []),
        Golden(
            "http origin with credentials",
            head
                + "cors {\n  allow_origin http://app.example.com http://localhost:3000 http://127.0.0.1:8080 http://[::1]:5173\n  allow_credentials on\n}\n",
            [
                "proxy.conf:4:16: warning: http://app.example.com is plain http: with allow_credentials on, anyone on the network path can act as that origin; use https://"
            ]),
        Golden(
            "http wildcard with credentials",
            head + "cors {\n  allow_origin http://*.example.com\n  allow_credentials on\n}\n",
            [
                "proxy.conf:4:16: warning: http://*.example.com is plain http: with allow_credentials on, anyone on the network path can act as those origins; use https://"
            ]),
        Golden(
            "http origin inherited by a route that turns credentials on",
            head
                + "cors {\n  allow_origin http://app.example.com\n}\nroute /a/ { upstream api; allow_credentials on }\nroute /b/ { upstream api; allow_credentials on }\n",
            [
                "proxy.conf:4:16: warning: http://app.example.com is plain http: with allow_credentials on, anyone on the network path can act as that origin; use https://"
            ]),
        Golden(
            "wildcard over a public suffix",
            head
                + "cors {\n  allow_origin https://*.github.io https://*.co.uk https://*.s3.amazonaws.com https://*.mine.github.io\n}\n",
            [
                "proxy.conf:4:16: warning: https://*.github.io covers a public suffix: anyone can register a site under github.io; list your own origins or use a wildcard under your own domain",
                "proxy.conf:4:36: warning: https://*.co.uk covers a public suffix: anyone can register a site under co.uk; list your own origins or use a wildcard under your own domain",
                "proxy.conf:4:52: warning: https://*.s3.amazonaws.com covers a public suffix: anyone can register a site under s3.amazonaws.com; list your own origins or use a wildcard under your own domain",
            ]),
        Golden(
            "max_age above 7200s",
            head
                + "cors {\n  max_age 3h\n}\nroute /a/ { upstream api; max_age 7201 }\nroute /b/ { upstream api; max_age 2h }\n",
            [
                "proxy.conf:4:11: warning: max_age 3h is above 7200s (2h), Chromium's cap: browsers will cache the preflight for 2h at most; write max_age 2h or less",
                "proxy.conf:6:35: warning: max_age 7201 is above 7200s (2h), Chromium's cap: browsers will cache the preflight for 2h at most; write max_age 2h or less",
            ]),
        Golden(
            "route that can never match",
            head + "route /api { upstream api }\nroute /api/ { upstream api }\nroute = /api { upstream api }\n",
            [
                "proxy.conf:3:1: warning: route /api can never match: route /api/ (line 4) takes every path under /api/ and route = /api (line 5) takes /api itself; remove it"
            ]),
        Golden(
            "/api beside /api/ still matches /api: no warning",
            head + "route /api { upstream api }\nroute /api/ { upstream api }\n", []),
        Golden(
            "/api beside = /api still matches /api/x: no warning",
            head + "route /api { upstream api }\nroute = /api { upstream api }\n", []),
        Golden(
            "/api/ beside = /api/ still matches /api/x: no warning",
            head + "route /api/ { upstream api }\nroute = /api/ { upstream api }\n", []),
        Golden(
            "* beside other origins", head + "route /a/ {\n  upstream api\n  allow_origin https://a.example.com *\n}\n",
            [
                "proxy.conf:5:38: warning: '*' in allow_origin allows every origin, so the other entries are redundant; remove them or the '*'",
                "proxy.conf:5:38: warning: '*' in allow_origin lets every site open a WebSocket here that carries the user's cookies (browsers apply no CORS to WebSocket, so the origin check is the only guard); list the origins, or write websocket off",
            ]),
        Golden(
            "CORS directive in a cors off route",
            head + "route /a/ {\n  upstream api\n  cors off\n  allow_origin https://a.example.com\n}\n",
            [
                "proxy.conf:6:3: warning: allow_origin has no effect in a route with cors off (line 5); remove one of them"
            ]),
        Golden(
            "warnings and errors together, in source order", head + "cors {\n  max_age 3h\n  enforce maybe\n}\n",
            [
                "proxy.conf:4:11: warning: max_age 3h is above 7200s (2h), Chromium's cap: browsers will cache the preflight for 2h at most; write max_age 2h or less",
                "proxy.conf:5:11: error: enforce takes on, report or off, not 'maybe'",
            ]),
    ]

    @Test(arguments: cases)
    func golden(_ c: Golden) {
        c.check()
    }

    @Test func warningsKeepTheConfiguration() throws {
        let result = loadConf(head + "cors { max_age 3h }\n")
        #expect(result.warnings.count == 1)
        #expect(result.errors.isEmpty)
        let config = try #require(result.configuration)
        #expect(config.defaultCORS.maxAgeMilliseconds == Int64(10_800_000))
    }
}
