import Testing

@testable import ProxyConfig

/// `log_format text|json`: top level only, default `text`.
@Suite struct LogFormatTests {
    let route = "route / { upstream api }\n"

    @Test func defaultsToText() throws {
        let config = try #require(loadConf(head + route).configuration)
        #expect(config.logFormat == .text)
    }

    @Test(arguments: [("log_format json\n", ProxyConfiguration.LogFormat.json), ("log_format text;\n", .text)])
    func accepted(_ line: String, _ format: ProxyConfiguration.LogFormat) throws {
        let result = loadConf(head + line + route)
        #expect(result.diagnostics.map(\.description) == [])
        #expect(result.configuration?.logFormat == format)
    }

    /// A container sets it from the environment.
    @Test func fromTheEnvironment() throws {
        let conf = head + "log_format ${LOG_FORMAT:-text}\n" + route
        #expect(loadConf(conf).configuration?.logFormat == .text)
        #expect(loadConf(conf, env: ["LOG_FORMAT": "json"]).configuration?.logFormat == .json)
        #expect(
            diagnostics(conf, env: ["LOG_FORMAT": "yaml"]) == [
                "proxy.conf:3:12: error: log_format takes text or json, not 'yaml'"
            ])
    }

    static let refusals: [Golden] = [
        Golden(
            "unknown value", head + "log_format xml\n",
            ["proxy.conf:3:12: error: log_format takes text or json, not 'xml'"]),
        Golden(
            "values are case-sensitive", head + "log_format JSON\n",
            ["proxy.conf:3:12: error: log_format takes text or json, not 'JSON'"]),
        Golden(
            "non-ASCII before the value counts in characters", head + "log_format\t\"jsön\"\n",
            ["proxy.conf:3:12: error: log_format takes text or json, not 'jsön'"]),
        Golden(
            "missing value", head + "log_format\n",
            ["proxy.conf:3:1: error: log_format needs one argument; write log_format json"]),
        Golden(
            "two values", head + "log_format json text\n",
            ["proxy.conf:3:17: error: log_format takes one argument; remove 'text' (write log_format json)"]),
        Golden(
            "given twice", head + "log_format json\nlog_format text\n",
            ["proxy.conf:4:1: error: log_format is already set on line 3 of this block; keep one"]),
        Golden(
            "with a block", head + "log_format json { }\n",
            ["proxy.conf:3:17: error: log_format does not take a block; remove the '{ … }'"]),
        Golden(
            "in a route", head + "route /a/ {\n  upstream api\n  log_format json\n}\n",
            ["proxy.conf:5:3: error: log_format is not allowed inside a route; move it to the top level"]),
        Golden(
            "in cors", head + "cors {\n  log_format json\n}\n",
            ["proxy.conf:4:3: error: log_format is not allowed inside cors { … }; move it to the top level"]),
        Golden(
            "in an upstream", head + "upstream b {\n  url http://x\n  log_format json\n}\n",
            [
                "proxy.conf:5:3: error: log_format is not allowed inside upstream { … }, which holds url, connect_timeout, timeout, ca_file, tls_verify, client_certificate and client_key"
            ]),
        Golden(
            "a typo", head + "log_fromat json\n",
            ["proxy.conf:3:1: error: unknown directive 'log_fromat'; did you mean log_format?"]),
    ]

    @Test(arguments: refusals) func refused(_ c: Golden) {
        #expect(diagnostics(c.conf + route, env: c.env) == c.expected)
        #expect(loadConf(c.conf + route, env: c.env).configuration == nil)
    }
}
