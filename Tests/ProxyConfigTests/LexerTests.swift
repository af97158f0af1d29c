import Testing

@testable import ProxyConfig

/// `${…}` expansion, quoting and comments, observed through what the conf loads.
@Suite struct LexerTests {
    struct Expansion: CustomTestStringConvertible, Sendable {
        var name: String
        var word: String
        var env: [String: String]
        var url: String
        var testDescription: String { name }
    }

    static let expansions: [Expansion] = [
        .init(name: "whole word", word: "${U}", env: ["U": "http://a:1"], url: "http://a:1"),
        .init(name: "default when unset", word: "${U:-http://d:2}", env: [:], url: "http://d:2"),
        .init(name: "default when empty", word: "${U:-http://d:2}", env: ["U": ""], url: "http://d:2"),
        .init(name: "value beats default", word: "${U:-http://d:2}", env: ["U": "http://v:3"], url: "http://v:3"),
        .init(name: "inside a bare word", word: "http://${H}:${P}/x", env: ["H": "h", "P": "9"], url: "http://h:9/x"),
        .init(name: "inside quotes", word: "\"http://${H}:9\"", env: ["H": "q"], url: "http://q:9"),
        .init(name: "default runs to the first }", word: "${U:-http://d:4/a}", env: [:], url: "http://d:4/a"),
        .init(
            name: "braces inside do not end the word", word: "http://${H:-x}.${D:-example}.com", env: [:],
            url: "http://x.example.com"),
        .init(name: "$ without { is plain", word: "http://h:5/$x", env: [:], url: "http://h:5/$x"),
        .init(name: "trailing $", word: "http://h:5/a$", env: [:], url: "http://h:5/a$"),
        .init(
            name: "expanded text is not re-lexed", word: "${U}", env: ["U": "http://h:6/${X}"], url: "http://h:6/${X}"),
        .init(name: "escapes in quotes", word: "\"http://h:7/a\\\\b\"", env: [:], url: "http://h:7/a\\b"),
    ]

    @Test(arguments: expansions)
    func expansion(_ c: Expansion) throws {
        let result = loadConf("listen 127.0.0.1:0\nupstream u \(c.word)\n", env: c.env)
        #expect(result.diagnostics.map(\.description) == [])
        let upstream = try #require(result.configuration?.upstreams["u"])
        #expect(upstream.urlPrefix == c.url)
    }

    @Test func emptySetVariableWithoutDefaultIsEmpty() {
        // Set but empty: no "unset" error; the empty URL is then refused as a value.
        #expect(
            diagnostics(head + "upstream b ${EMPTY}\n", env: ["EMPTY": ""]) == [
                "proxy.conf:3:12: error: '' is not a URL; write http://HOST[:PORT][/PATH], e.g. http://127.0.0.1:3000 or https://api.internal:8443/v1"
            ])
    }

    @Test func quotedArgumentsAndEscapes() throws {
        let conf =
            head + """
                cors {
                    allow_headers "X-A" "X-\\"B\\""  # comment after "quotes"
                    expose_headers X-Id;allow_methods GET
                }
                route "/with space/" { upstream api }
                """
        let result = loadConf(conf)
        #expect(
            result.diagnostics.map(\.description) == [
                "proxy.conf:4:25: error: 'X-\"B\"' in allow_headers is not a header name (a token such as X-Request-Id)",
                "proxy.conf:7:7: error: a route path contains no whitespace or control characters",
            ])
    }

    @Test func commentsAndSemicolons() throws {
        let conf = """
            # full-line comment
            listen 127.0.0.1:0 # trailing comment; not a directive end
            upstream api http://127.0.0.1:1;route /a/ { upstream api; allow_origin https://a.example.com#frag
            }
            """
        let result = loadConf(conf)
        #expect(result.diagnostics.isEmpty)
        let route = try #require(result.configuration?.routes.match(path: "/a/"))
        #expect(route.cors?.allowOrigin.map(\.description) == ["https://a.example.com"])
    }

    @Test func crlfLineEndings() throws {
        let result = loadConf("listen 127.0.0.1:0\r\nupstream api http://h:1\r\nroute /a/ {\r\n upstream api\r\n}\r\n")
        #expect(result.diagnostics.isEmpty)
        #expect(result.configuration?.routes.routes.count == 1)
    }
}

/// Durations, sizes and switches.
@Suite struct UnitsTests {
    @Test(arguments: [
        ("250ms", Int64(250)), ("30s", 30_000), ("5m", 300_000), ("1h", 3_600_000), ("7", 7000), ("0", 0),
        ("1500ms", 1500),
    ])
    func durations(_ text: String, _ milliseconds: Int64) throws {
        #expect(try Units.milliseconds(text).get() == milliseconds)
    }

    @Test(arguments: ["", "s", "1.5s", "-1", "10x", "1d", "5M", "99999999999999999999", "9223372036854775807h", "1 s"])
    func badDurations(_ text: String) {
        #expect(throws: ValueError.self) { try Units.milliseconds(text).get() }
    }

    @Test(arguments: [
        ("512", Int64(512)), ("64k", 65536), ("10m", 10 << 20), ("1g", 1 << 30), ("0", 0), ("2K", 2048),
        ("3M", 3 << 20),
    ])
    func sizes(_ text: String, _ bytes: Int64) throws {
        #expect(try Units.bytes(text).get() == bytes)
    }

    @Test(arguments: ["", "k", "1.5m", "-5", "10q", "1t", "9223372036854775807g", "10 m"])
    func badSizes(_ text: String) {
        #expect(throws: ValueError.self) { try Units.bytes(text).get() }
    }

    @Test func switches() throws {
        #expect(try Units.onOff("on", directive: "x").get() == true)
        #expect(try Units.onOff("off", directive: "x").get() == false)
        #expect(throws: ValueError.self) { try Units.onOff("ON", directive: "x").get() }
    }

    @Test func unitsInTheConf() throws {
        let conf = """
            listen 127.0.0.1:0
            max_body_size 64k
            drain_timeout 1500ms
            upstream api { url http://h:1; connect_timeout 250ms; timeout 2m }
            route /a/ { upstream api; max_body_size 0; max_age 90 }
            route /b/ { upstream api }
            """
        let config = try #require(loadConf(conf).configuration)
        #expect(config.maxBodySize == 65536)
        #expect(config.drainTimeoutMilliseconds == 1500)
        #expect(config.upstreams["api"]?.connectTimeoutMilliseconds == 250)
        #expect(config.upstreams["api"]?.timeoutMilliseconds == 120_000)
        #expect(config.routes.match(path: "/a/")?.maxBodySize == 0)
        #expect(config.routes.match(path: "/a/")?.cors?.maxAgeMilliseconds == 90_000)
        #expect(config.routes.match(path: "/b/")?.maxBodySize == 65536)
    }

    @Test func formatting() {
        #expect(Units.formatDuration(3_600_000) == "1h")
        #expect(Units.formatDuration(600_000) == "10m")
        #expect(Units.formatDuration(0) == "0s")
        #expect(Units.formatDuration(1500) == "1500ms")
        #expect(Units.formatSize(100 << 20) == "100m")
        #expect(Units.formatSize(1536) == "1536")
    }
}
