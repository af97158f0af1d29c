import ProxyLog
import Testing

@Suite struct ParserTests {
    @Test func readsBothFormatsBack() throws {
        for format in LogFormat.allCases {
            let parsed = try #require(LogLineParser.parse(render(allowedGet(), format)))
            #expect(parsed.time == "2026-12-06T01:23:07.123Z")
            #expect(parsed.level == "info")
            #expect(parsed.event == "access")
            #expect(
                parsed.fields == [
                    "client": "127.0.0.1", "method": "GET", "target": "/api/items", "route": "/api/", "kind": "actual",
                    "status": "200", "outcome": "allowed", "duration_ms": "0.412", "origin": "https://app.example.com",
                    "bytes_in": "0", "bytes_out": "512", "upstream": "api", "upstream_ms": "0.301",
                ])
        }
    }

    @Test(arguments: [
        "",
        "hello world",
        "Dec 06 01:23:07 host cors-proxy[1]: something",
        "2026-12-06T01:23:07.123Z loud access client=1",
        "2026-12-06 01:23:07 info access",
        "2026-12-06T01:23:07.123Z info access client=\"unclosed",
        "2026-12-06T01:23:07.123Z info access client",
        "2026-12-06T01:23:07.123Z info access =x",
        #"{"a":1}"#,
        #"{"time":"yesterday","level":"info","event":"access"}"#,
        #"{"time":"2026-12-06T01:23:07.123Z","level":"info","event":"access","nested":{"a":1}}"#,
        #"{"time":"2026-12-06T01:23:07.123Z","level":"info","event":"access","client":"1"#,
        #"{"time":"2026-12-06T01:23:07.123Z","level":"info","event":"access"} trailing"#,
    ])
    func refusesLinesThatAreNotTheProxys(_ line: String) {
        #expect(LogLineParser.parse(line) == nil)
    }

    @Test func acceptsOtherJSONSpellings() throws {
        let parsed = try #require(
            LogLineParser.parse(
                #"{ "level" : "warning", "time":"2026-12-06T01:23:07.123Z", "event":"denial", "origin":"https:\/\/a.example\ud83d\ude00", "ok":true, "n":null }"#
            ))
        #expect(parsed.event == "denial")
        #expect(parsed["origin"] == "https://a.example😀")
        #expect(parsed["ok"] == "true")
        #expect(parsed["n"] == "null")
    }
}
