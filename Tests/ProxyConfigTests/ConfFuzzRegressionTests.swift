import Foundation
import Testing

@testable import ProxyConfig

/// Inputs found or suggested by the conf fuzzer (fuzz/conf, `make fuzz`), kept as regressions.
///
/// Two were bugs, fixed since (docs/RELIABILITY.md, "Bugs found"): a deeply nested regex that
/// overflowed the stack of Swift's regex parser, and quadratic list de-duplication.
@Suite struct ConfFuzzRegressionTests {

    /// The head the fuzzer's slot mode puts before every value.
    static let slotHead = "listen 127.0.0.1:0\nupstream api http://127.0.0.1:3000\nroute /api/ { upstream api }\n"

    func elapsed(_ body: () -> Void) -> Double {
        let clock = ContinuousClock()
        let d = clock.measure(body)
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// libFuzzer flagged this input (slot mode, upstream block) as a 1 s timeout while the machine
    /// was loaded; replayed alone it takes milliseconds. Kept: it must stay an error and fast.
    @Test func flaggedUpstreamBlockInputIsFastAndAnError() {
        let value = String(
            decoding: [
                0xAE, 0xAE, 0xAE, 0xAE, 0xAE, 0xAE, 0x5F, 0x0A, 0x0D, 0x5C, 0x70, 0, 0, 0, 0, 0, 0, 0xAE, 0xAE, 0xAE,
                0x3B, 0x7B, 0x4C, 0x03, 0x7D,
            ] as [UInt8], as: UTF8.self)
        let text =
            Self.slotHead
            + "upstream u { url \(value); connect_timeout \(value); timeout \(value) }\nroute /u/ { upstream u }\n"
        var result: LoadResult?
        let seconds = elapsed { result = loadConf(text) }
        #expect(result?.configuration == nil)
        #expect(result?.errors.isEmpty == false)
        #expect(seconds < 1)
    }

    /// Deep nesting that is refused or accepted, but never a crash and never slow.
    @Test(arguments: [
        (
            "5000 nested parentheses",
            "cors { allow_origin ~" + String(repeating: "(", count: 5000) + "a" + String(repeating: ")", count: 5000)
                + " }\n"
        ),
        (
            "1000 nested classes",
            "cors { allow_origin ~" + String(repeating: "[", count: 1000) + "a" + String(repeating: "]", count: 1000)
                + " }\n"
        ),
        ("nested quantifiers", "cors { allow_origin \"~^(a+)+$\" }\n"),
        ("a huge repeat count", "cors { allow_origin ~a{1000000} }\n"),
        ("100k nested braces", String(repeating: "{", count: 100_000) + String(repeating: "}", count: 100_000)),
        ("an unclosed ${ per line", String(repeating: "upstream x ${A:-${B\n", count: 2000)),
    ])
    func deepOrOddInputIsHandled(_ name: String, _ body: String) {
        var result: LoadResult?
        let seconds = elapsed { result = loadConf(Self.slotHead + body) }
        #expect(result != nil, "\(name)")
        #expect(seconds < 5, "\(name): \(seconds) s")
    }

    /// Was a crash (found by the optimised fuzzer): an all-digit host label was added up into an
    /// Int whatever its length, and Swift traps on overflow. The same code checks every request's
    /// `Origin`, so one request could stop the proxy.
    @Test(arguments: [
        "http://" + String(repeating: "0", count: 60) + "27.0.0.1:8080", "http://" + String(repeating: "9", count: 63),
        "http://1.2.3." + String(repeating: "9", count: 40),
        "http://[::ffff:" + String(repeating: "9", count: 30) + ".0.0.1]",
    ])
    func longNumericHostLabelIsAnErrorNotACrash(origin: String) {
        let result = loadConf(Self.slotHead + "cors { allow_origin \(origin) }\n")
        #expect(result.configuration == nil)
        #expect(result.errors.count == 1)
    }

    /// Was a crash: `allow_origin ~[[[…a…]]]` with a few thousand nested classes overflowed the
    /// stack inside Swift's regex parser. Now refused before the parser sees it.
    @Test func deeplyNestedRegexClassIsRefusedNotACrash() {
        let depth = 8000
        let regex = String(repeating: "[", count: depth) + "a" + String(repeating: "]", count: depth)
        let result = loadConf(Self.slotHead + "cors { allow_origin ~\(regex) }\n")
        #expect(result.configuration == nil)
    }

    /// Was quadratic: list de-duplication used `Array.contains` per entry (10,000 origins took
    /// ~10 s). Linear makes 4x the entries take ~4x the time; the best of three runs is compared,
    /// and the bound (10x) sits well below the quadratic 16x so machine noise cannot flip it.
    @Test func longOriginListsLoadInLinearTime() {
        func conf(_ n: Int) -> String {
            Self.slotHead + "cors {\n" + (0..<n).map { "allow_origin https://h\($0).example.com\n" }.joined() + "}\n"
        }
        let small = conf(1000)
        let large = conf(4000)
        _ = loadConf(small)
        let t1 = (0..<3).map { _ in elapsed { _ = loadConf(small) } }.min() ?? 0
        let t4 = (0..<3).map { _ in elapsed { _ = loadConf(large) } }.min() ?? 0
        #expect(t4 < t1 * 10, "1000 origins: \(t1) s, 4000 origins: \(t4) s (quadratic: ~16x)")
    }
}
