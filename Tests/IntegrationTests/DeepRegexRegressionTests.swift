import Foundation
import TestSupport
import Testing

/// Bugs the hardening work found, fixed since, reproduced end to end with the real binaries
/// (docs/RELIABILITY.md, "Bugs found").
@Suite(.serialized)
struct DeepRegexRegressionTests {
    /// SIGHUP re-reads the conf; an invalid one is logged and the old one keeps serving
    /// (README, "Using it"). A conf whose `allow_origin ~REGEX` nests 4000 character classes (8 KB) makes
    /// Swift's regex parser overflow the stack while the reload compiles it: the proxy dies (SIGSEGV).
    @Test func reloadWithADeeplyNestedRegexKeepsServing() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: standardConf(upstream: upstream.url))
        let depth = 4000
        let regex = String(repeating: "[", count: depth) + "a" + String(repeating: "]", count: depth)
        try proxy.rewrite(
            conf: standardConf(upstream: upstream.url, extra: "route /x/ { upstream api; allow_origin ~\(regex) }"))
        proxy.process.signal(SIGHUP)
        // The conf is refused (the regex nests too deeply) and the proxy keeps serving.
        try proxy.process.waitForLine("reload refused") { $0.contains("reload refused") }
        #expect(
            proxy.process.process.isRunning,
            "the proxy died on SIGHUP (status \(proxy.process.process.isRunning ? 0 : proxy.process.process.terminationStatus))"
        )
        if proxy.process.process.isRunning {
            #expect(try proxy.client().request("GET", "/api/items").status == 200)
        }
    }

    /// `cors-proxy check` on the same conf: exit 0 or 1, never a crash.
    @Test func checkWithADeeplyNestedRegexDoesNotCrash() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cors-proxy-bug-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("proxy.conf").path
        let regex = String(repeating: "[", count: 8000) + "a" + String(repeating: "]", count: 8000)
        try standardConf(upstream: "http://127.0.0.1:1", extra: "route /x/ { upstream api; allow_origin ~\(regex) }")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let check = try TestProcess("cors-proxy", ["check", "--config", path])
        let status = try check.waitForExit()
        #expect(
            check.process.terminationReason == .exit && (status == 0 || status == 1),
            "check ended with \(check.process.terminationReason == .exit ? "exit" : "signal") \(status)")
    }
}
