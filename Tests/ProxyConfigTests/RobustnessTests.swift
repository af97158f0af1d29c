import Testing

@testable import ProxyConfig

/// Hostile input: always errors, never a crash or a hang (linear time, no recursion).
@Suite struct RobustnessTests {
    /// A small deterministic PRNG so failures reproduce.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test(arguments: 0..<20)
    func randomBytes(_ seed: Int) {
        var rng = SplitMix(state: UInt64(seed))
        let bytes = (0..<20_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let result = loadConf(String(decoding: bytes, as: UTF8.self))
        #expect(result.configuration == nil)
        #expect(!result.errors.isEmpty)
    }

    @Test(arguments: 0..<20)
    func randomConfAlphabet(_ seed: Int) {
        // Bytes biased to the conf's own syntax: braces, quotes, ${, ;, newlines.
        var rng = SplitMix(state: UInt64(seed) &+ 1000)
        let alphabet = Array("{}\"\\;#$:-/ \n\tallow_origin*route=upstream listen${X:-}".utf8)
        let bytes = (0..<20_000).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] }
        let result = loadConf(String(decoding: bytes, as: UTF8.self))
        #expect(result.configuration == nil)
    }

    @Test func invalidUTF8() {
        let bytes: [UInt8] =
            Array("listen 127.0.0.1:0\nupstream api http://h:1\nroute /".utf8) + [0xFF, 0xC3, 0x28, 0xED, 0xA0, 0x80]
            + Array("/ { upstream api }\nfoo \u{0}\u{1}bar\n".utf8)
        let result = loadConf(String(decoding: bytes, as: UTF8.self))
        #expect(
            result.diagnostics.map(\.description) == [
                "proxy.conf:4:1: error: unknown directive 'foo'; expected one of: listen, admin, self_origin, upstream, max_body_size, drain_timeout, log_format, cors, route, tls"
            ])
    }

    @Test func nulAndControlBytesInADirective() {
        let result = loadConf(head + "lis\u{0}ten 1:2\n")
        #expect(
            result.diagnostics.map(\.description) == [
                "proxy.conf:3:1: error: unknown directive 'lis\\0ten'; did you mean listen?"
            ])
    }

    @Test func tenMegabyteLine() {
        let big = String(repeating: "a", count: 10 << 20)
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            let result = loadConf(head + big + " x\nroute /a/ { upstream nope }\n")
            #expect(result.errors.count == 2)
            #expect(result.errors.first?.description.utf8.count ?? 0 < 300)
            #expect(result.errors.last?.line == 4)
        }
        #expect(elapsed < .seconds(20))
    }

    @Test func tenMegabyteValueThenAnError() {
        // An error far along a huge line: its column is still right.
        let big = String(repeating: "é", count: 1 << 20)
        let result = loadConf(head + "cors { allow_headers X-\(big) ; enforce maybe }\n")
        #expect(result.diagnostics.map(\.column) == [22, (1 << 20) + 35])
    }

    @Test func hundredThousandNestedBraces() {
        let deep = String(repeating: "{", count: 100_000)
        let result = loadConf(head + deep)
        #expect(
            result.diagnostics.map(\.description) == [
                "proxy.conf:3:1: error: '{' must follow a block directive on the same line (cors {, upstream NAME {, route PATH {); move it up or remove it",
                "proxy.conf:3:1: error: this '{' is never closed; add '}'",
            ])
        let balanced = loadConf(head + "route /a/ { upstream api; x " + deep + String(repeating: "}", count: 100_001))
        #expect(balanced.errors.count == 1)
        let closing = loadConf(head + String(repeating: "}", count: 100_000))
        #expect(closing.errors.count == 100_000)
    }

    @Test func unclosedEverything() {
        let result = loadConf(head + "route /a/ { upstream api; foo { \"unterminated ${X")
        #expect(
            result.diagnostics.map(\.description) == [
                "proxy.conf:3:11: error: the '{' of route is never closed; add '}' at the end of the block",
                "proxy.conf:3:27: error: unknown directive 'foo'; expected one of: upstream, cors, max_body_size, preserve_host, strip_prefix, allow_origin, allow_methods, allow_headers, expose_headers, allow_credentials, max_age, allow_private_network, enforce, preflight_status, websocket",
                "proxy.conf:3:31: error: this '{' is never closed; add '}'",
                "proxy.conf:3:33: error: unclosed quote; end the string with '\"' on the same line",
                "proxy.conf:3:47: error: '${' is not closed; write ${NAME} or ${NAME:-default} on one line",
            ])
    }

    @Test func manyErrorsOnOneLongLine() {
        // Column resolution stays linear: 20k errors on one line.
        let line = String(repeating: "x; ", count: 20_000)
        let result = loadConf(head + line)
        #expect(result.errors.count == 20_000)
        #expect(result.errors.last?.column == 3 * 19_999 + 1)
    }
}
