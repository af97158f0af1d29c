import Foundation
import Logging
import ProxyLog
import Testing

/// The exact lines of both formats: the log's contract (docs/CONFIG.md, "Log lines").
@Suite struct RenderingTests {
    @Test func accessLineText() {
        #expect(
            render(allowedGet(), .text)
                == "2026-12-06T01:23:07.123Z info access client=127.0.0.1 method=GET target=/api/items route=/api/ kind=actual status=200 outcome=allowed duration_ms=0.412 origin=https://app.example.com bytes_in=0 bytes_out=512 upstream=api upstream_ms=0.301\n"
        )
    }

    @Test func accessLineJSON() {
        #expect(
            render(allowedGet(), .json)
                == #"{"time":"2026-12-06T01:23:07.123Z","level":"info","event":"access","client":"127.0.0.1","method":"GET","target":"/api/items","route":"/api/","kind":"actual","status":200,"outcome":"allowed","duration_ms":0.412,"origin":"https://app.example.com","bytes_in":0,"bytes_out":512,"upstream":"api","upstream_ms":0.301}"#
                + "\n")
    }

    /// A denied preflight: reason code and words, the requested method and headers as received.
    @Test func denialLineBothFormats() {
        let record = AccessRecord(
            event: .denial, level: .warning, client: "10.0.0.7", method: "OPTIONS", target: "/api/items?x=1",
            route: "= /exact", kind: "preflight", status: 403, outcome: "denied", durationNanoseconds: 9_999_999,
            origin: "https://evil.example", reason: "origin_not_allowed",
            detail: "origin https://evil.example is not in allow_origin for route = /exact", requestMethod: "PUT",
            requestHeaders: "content-type, x-custom", bytesIn: 0, bytesOut: 120, note: "client closed")
        #expect(
            render(record, .text)
                == #"2026-12-06T01:23:07.123Z warning denial client=10.0.0.7 method=OPTIONS target="/api/items?x=1" route="= /exact" kind=preflight status=403 outcome=denied duration_ms=10.000 origin=https://evil.example reason=origin_not_allowed detail="origin https://evil.example is not in allow_origin for route = /exact" request_method=PUT request_headers="content-type, x-custom" bytes_in=0 bytes_out=120 note="client closed""#
                + "\n")
        #expect(
            render(record, .json)
                == #"{"time":"2026-12-06T01:23:07.123Z","level":"warning","event":"denial","client":"10.0.0.7","method":"OPTIONS","target":"/api/items?x=1","route":"= /exact","kind":"preflight","status":403,"outcome":"denied","duration_ms":10.000,"origin":"https://evil.example","reason":"origin_not_allowed","detail":"origin https://evil.example is not in allow_origin for route = /exact","request_method":"PUT","request_headers":"content-type, x-custom","bytes_in":0,"bytes_out":120,"note":"client closed"}"#
                + "\n")
    }

    @Test func durationsRoundToTheMicrosecond() {
        let buffer = LineBuffer()
        for nanoseconds: Int64 in [0, 499, 500, 1_000_000, 1_234_567_890, -5] {
            buffer.appendMilliseconds(nanoseconds: nanoseconds)
            buffer.append(UInt8(ascii: " "))
        }
        #expect(buffer.text == "0.000 0.000 0.001 1.000 1234.568 0.000 ")
    }

    /// The brief's example of a library message, and its JSON twin.
    @Test func messageLines() {
        func line(_ format: LogFormat, event: String?, message: String, _ fields: [(String, String)]) -> String {
            let buffer = LineBuffer()
            var clock = TimestampFormatter()
            MessageLine.render(
                level: .info, event: event, message: message, fields: fields.map { (key: $0.0, value: $0.1) },
                format: format, into: buffer, clock: &clock, seconds: goldenSecond, nanoseconds: 123_000_000)
            return buffer.text
        }
        let listening = [("port", "8080"), ("address", "127.0.0.1:8080")]
        #expect(
            line(.text, event: "listening", message: "listening", listening)
                == "2026-12-06T01:23:07.123Z info listening address=127.0.0.1:8080 port=8080\n")
        #expect(
            line(.json, event: "listening", message: "listening", listening)
                == #"{"time":"2026-12-06T01:23:07.123Z","level":"info","event":"listening","msg":"listening","address":"127.0.0.1:8080","port":"8080"}"#
                + "\n")
        // The admin line: integration tests read the port after its last ':'.
        #expect(
            line(.text, event: "listening", message: "admin listening", [("address", "127.0.0.1:9901")])
                == #"2026-12-06T01:23:07.123Z info listening msg="admin listening" address=127.0.0.1:9901"# + "\n")
        // No event: `log`. Keys the line uses itself, and unsafe key bytes, cannot collide or break out.
        #expect(
            line(.text, event: nil, message: "conf warning", [("time", "x"), ("a b=c", "1"), ("msg", "y")])
                == #"2026-12-06T01:23:07.123Z info log msg="conf warning" _msg=y _time=x a_b_c=1"# + "\n")
    }
}

/// Request-derived values are attacker-controlled: no value may forge a line or a field.
@Suite struct EscapingTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var value: [UInt8]
        var text: String
        var json: String
        var testDescription: String { name }
        init(_ name: String, _ value: [UInt8], text: String, json: String) {
            self.name = name
            self.value = value
            self.text = text
            self.json = json
        }
        init(_ name: String, _ value: String, text: String, json: String) {
            self.init(name, Array(value.utf8), text: text, json: json)
        }
    }

    static let cases: [Case] = [
        Case("plain", "https://a.example", text: "https://a.example", json: #""https://a.example""#),
        Case("empty", "", text: #""""#, json: #""""#),
        Case("space", "a b", text: #""a b""#, json: #""a b""#),
        Case("equals", "a=b", text: #""a=b""#, json: #""a=b""#),
        Case("quote", #"a"b"#, text: #""a\"b""#, json: #""a\"b""#),
        Case("backslash", #"a\b"#, text: #""a\\b""#, json: #""a\\b""#),
        Case(
            "forged line", "x\n2026-12-06T01:23:07.123Z info access client=1.2.3.4",
            text: #""x\n2026-12-06T01:23:07.123Z info access client=1.2.3.4""#,
            json: #""x\n2026-12-06T01:23:07.123Z info access client=1.2.3.4""#),
        Case("CR and tab", "a\r\tb", text: #""a\r\tb""#, json: #""a\r\tb""#),
        Case(
            "control bytes", [0x61, 0x00, 0x1B, 0x7F], text: #""a\u0000\u001b\u007f""#, json: #""a\u0000\u001b\u007f""#),
        Case("non-ASCII kept", "héllo", text: #""héllo""#, json: #""héllo""#),
        Case("emoji kept", "a😀", text: #""a😀""#, json: #""a😀""#),
        Case(
            "invalid UTF-8", [0x61, 0xFF, 0xC3, 0x28, 0x62], text: "\"a\u{FFFD}\u{FFFD}(b\"",
            json: "\"a\u{FFFD}\u{FFFD}(b\""),
        Case("overlong slash", [0xC0, 0xAF], text: "\"\u{FFFD}\u{FFFD}\"", json: "\"\u{FFFD}\u{FFFD}\""),
        Case(
            "surrogate", [0xED, 0xA0, 0x80], text: "\"\u{FFFD}\u{FFFD}\u{FFFD}\"", json: "\"\u{FFFD}\u{FFFD}\u{FFFD}\""),
        Case("truncated sequence", [0x61, 0xE2, 0x82], text: "\"a\u{FFFD}\u{FFFD}\"", json: "\"a\u{FFFD}\u{FFFD}\""),
        Case("C1 next line", "a\u{85}b", text: #""a\u0085b""#, json: #""a\u0085b""#),
        Case("line separator", "a\u{2028}b", text: #""a\u2028b""#, json: #""a\u2028b""#),
        Case("bidi override", "a\u{202E}b", text: #""a\u202eb""#, json: #""a\u202eb""#),
    ]

    @Test(arguments: cases) func value(_ c: Case) throws {
        let text = LineBuffer()
        c.value.withUnsafeBufferPointer { text.appendTextValue(bytes: $0) }
        #expect(text.text == c.text)
        let json = LineBuffer()
        c.value.withUnsafeBufferPointer { json.appendJSONString(bytes: $0) }
        #expect(json.text == c.json)
        // Valid UTF-8 whatever came in, so a JSON line always parses.
        #expect(json.withUnsafeBytes { String(validating: $0, as: UTF8.self) } != nil)
        let decoded = try JSONSerialization.jsonObject(
            with: Data(json.withUnsafeBytes { Array($0) }), options: [.fragmentsAllowed])
        #expect(decoded is String)
    }

    /// A hostile record still renders as one line that reads back field for field.
    @Test func hostileRecordStaysOneLine() throws {
        var record = allowedGet()
        record.target = "/x\n2026-12-06T01:23:07.123Z warning denial client=6.6.6.6 \"=\\"
        record.origin = "https://é.example\u{2028}\r\n"
        record.note = "a=b c\"d"
        for format in LogFormat.allCases {
            let line = render(record, format)
            #expect(line.utf8.filter { $0 == 0x0A }.count == 1, "\(line)")
            #expect(!line.unicodeScalars.contains { $0 == "\r" || $0 == "\u{2028}" })
            let parsed = try #require(LogLineParser.parse(line), "\(line)")
            #expect(parsed.event == "access")
            #expect(parsed["target"] == record.target)
            #expect(parsed["origin"] == record.origin)
            #expect(parsed["note"] == record.note)
            #expect(parsed["client"] == "127.0.0.1")
            if format == .json {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object?["target"] as? String == record.target)
                #expect(object?["status"] as? Int == 200)
                #expect(object?["duration_ms"] as? Double == 0.412)
            }
        }
    }
}
