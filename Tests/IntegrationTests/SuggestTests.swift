import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `cors-proxy suggest` on the log of a real proxy in report mode: its suggestion, merged
/// into the conf and enforced, allows the same traffic, and still refuses what it held back.
@Suite(.serialized)
struct SuggestTests {
    /// Runs `cors-proxy ARGS` to completion, `stdin` as its input.
    func run(_ arguments: [String], stdin: String? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        try runCORSProxy(arguments, input: stdin)
    }

    func temporaryFile(_ name: String, _ text: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("suggest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// One request of the replayed traffic.
    struct Call: CustomStringConvertible {
        var path: String
        var origin: String
        /// nil: an actual GET (or `method`); set: a preflight asking for it.
        var preflight: String?
        var method = "GET"
        var headers: String?
        /// Left for a person to decide: still refused after the merge.
        var held = false

        var description: String {
            "\(preflight.map { "preflight \($0)" } ?? method) \(path) from \(origin) \(headers ?? "")"
        }

        func send(to port: Int) throws -> HTTPResponse {
            var lines = [("Origin", origin)]
            if let preflight {
                lines.append(("Access-Control-Request-Method", preflight))
                if let headers { lines.append(("Access-Control-Request-Headers", headers)) }
                return try HTTPClient(port: port).request("OPTIONS", path, headers: lines)
            }
            return try HTTPClient(port: port).request(method, path, headers: lines)
        }
    }

    static let traffic: [Call] = [
        Call(path: "/api/items", origin: "https://app.example.com"),  // allowed from the start
        Call(path: "/api/items", origin: "https://a.shop.example.net"),
        Call(path: "/api/items", origin: "https://b.shop.example.net"),
        Call(path: "/api/items", origin: "https://c.shop.example.net"),
        Call(path: "/api/items", origin: "https://c.shop.example.net", preflight: "PUT", headers: "X-Custom"),
        // Three hosts under a public suffix: three origins, never *.github.io.
        Call(path: "/api/items", origin: "https://alice.github.io"),
        Call(path: "/api/items", origin: "https://bob.github.io"),
        Call(path: "/api/items", origin: "https://carol.github.io"),
        Call(path: "/api/items", origin: "http://127.0.0.1:8000"),
        Call(path: "/api/items/7", origin: "https://app.example.com", method: "DELETE"),
        Call(
            path: "/api/items", origin: "https://app.example.com", preflight: "PATCH", headers: "X-Custom, Content-Type"
        ),
        Call(path: "/v2/api/items", origin: "https://partner.example.org", preflight: "PUT", headers: "Content-Type"),
        Call(path: "/v2/api/items", origin: "https://partner.example.org"),
        // Held back.
        Call(path: "/api/items", origin: "null", held: true),
        Call(path: "/api/items", origin: "http://evil.example", held: true),
        Call(path: "/api/items", origin: "https://203.0.113.9", held: true),
        Call(
            path: "/api/items", origin: "https://app.example.com", preflight: "GET", headers: "Authorization",
            held: true),
    ]

    func conf(upstream: String, format: String) -> String {
        """
        listen 127.0.0.1:0
        log_format \(format)
        upstream api \(upstream)

        cors {
            allow_origin https://app.example.com
            allow_methods GET HEAD POST
            allow_headers Content-Type
            allow_credentials on
        }

        route /api/ {
            upstream api
            enforce report
        }

        route /v2/ {
            upstream api
            strip_prefix /v2
            allow_origin https://app.example.com
            allow_credentials off
            enforce report
        }
        """
    }

    func denialLines(_ proxy: Proxy) -> [String] {
        proxy.process.output.filter { $0.contains(" warning denial ") || $0.contains(#""event":"denial""#) }
    }

    func waitFor(_ what: String, _ proxy: Proxy, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(20)
        while !condition() {
            guard Date() < deadline else {
                throw TestTimeout(what: "\(what); output:\n\(proxy.process.output.joined(separator: "\n"))")
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    @Test func fromReportModeToAnEnforcedConf() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: conf(upstream: upstream.url, format: "text"))
        let deniedCount = Self.traffic.count - 1

        // The traffic, logged in text; then again, logged in JSON after a reload that
        // switches the format: suggest reads both.
        for call in Self.traffic { _ = try call.send(to: proxy.port) }
        try waitFor("\(deniedCount) denial lines", proxy) { denialLines(proxy).count >= deniedCount }
        let json = conf(upstream: upstream.url, format: "json")
        try proxy.rewrite(conf: json)
        proxy.process.signal(SIGHUP)
        try proxy.process.waitForLine("reload") { $0.contains("conf reloaded") }
        for call in Self.traffic.prefix(5) { _ = try call.send(to: proxy.port) }
        try waitFor("\(deniedCount + 4) denial lines", proxy) { denialLines(proxy).count >= deniedCount + 4 }
        #expect(denialLines(proxy).contains { $0.hasPrefix("{") })

        let log = try temporaryFile(
            "proxy.log", (proxy.process.output + ["not a line of ours"]).joined(separator: "\n"))
        let suggestion = try run(["suggest", "--config", proxy.confPath, log])
        #expect(suggestion.status == 0, "\(suggestion)")
        let text = suggestion.stdout
        #expect(text.contains("1 line skipped"), "\(text)")
        #expect(text.contains("https://*.shop.example.net"), "\(text)")
        #expect(!text.contains("*.github.io"), "\(text)")
        let decisions = try #require(text.range(of: "# needs a decision:")).upperBound
        for held in ["null", "http://evil.example", "https://203.0.113.9", "Authorization"] {
            #expect(text[decisions...].contains("#   \(held) "), "\(held) in\n\(text)")
        }

        // Merge, enforce, check.
        let merged = mergeSuggestion(text, into: json).replacingOccurrences(of: "enforce report", with: "enforce on")
        let mergedPath = try temporaryFile("merged.conf", merged)
        let check = try run(["check", "--config", mergedPath])
        #expect(check.status == 0, "\(check.stderr)\n\(merged)")
        #expect(check.stderr.isEmpty, "\(check.stderr)")

        func reloads() -> Int { proxy.process.output.filter { $0.contains("conf reloaded") }.count }
        let before = reloads()
        try proxy.rewrite(conf: merged)
        proxy.process.signal(SIGHUP)
        try waitFor("the second reload", proxy) { reloads() > before }

        // The same traffic, enforced: allowed now, except what was held back.
        for call in Self.traffic {
            let response = try call.send(to: proxy.port)
            let acao = response.values("Access-Control-Allow-Origin")
            if call.held {
                #expect(response.status == 403, "\(call): \(response.status)")
                #expect(acao.isEmpty, "\(call): \(acao)")
            } else {
                #expect(response.status == (call.preflight == nil ? 200 : 204), "\(call): \(response.status)")
                #expect(acao == [call.origin], "\(call): \(acao)")
            }
        }
    }

    @Test func exitStatusAndInputs() throws {
        let denial =
            #"2026-12-06T01:23:07.123Z warning denial client=1.2.3.4 method=GET target=/x route=/api/ kind=actual status=403 outcome=denied duration_ms=0.010 origin=https://a.example reason=origin_not_allowed detail=x bytes_in=0 bytes_out=1"#
        // stdin.
        let fromStdin = try run(["suggest", "-"], stdin: denial + "\n")
        #expect(fromStdin.status == 0)
        #expect(fromStdin.stdout.contains("allow_origin https://a.example  # added: https://a.example 1"))
        #expect(fromStdin.stdout.contains("of stdin"))
        // Only items that need a decision: still something printed for the route.
        let held = try run(["suggest", "-"], stdin: denial.replacingOccurrences(of: "https://a.example", with: "null"))
        #expect(held.status == 0)
        #expect(held.stdout.contains("# needs a decision:"))
        // Nothing: 1.
        let nothing = try run(["suggest", try temporaryFile("empty.log", "hello\n")])
        #expect(nothing.status == 1)
        #expect(nothing.stdout.contains("# nothing to suggest: the log has no denial lines"))
        let filtered = try run(["suggest", "--route", "/other/", "-"], stdin: denial)
        #expect(filtered.status == 1)
        // Cannot read: 2.
        let missing = try run(["suggest", "/nonexistent/proxy.log"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("cannot read /nonexistent/proxy.log: No such file or directory"))
        let directory = try run(["suggest", FileManager.default.temporaryDirectory.path])
        #expect(directory.status == 2)
        #expect(directory.stderr.contains("Is a directory"))
        // An invalid conf given with --config: its errors, and 2.
        let badConf = try temporaryFile("bad.conf", "bogus\n")
        let invalid = try run(["suggest", "--config", badConf, "-"], stdin: denial)
        #expect(invalid.status == 2)
        #expect(invalid.stderr.contains("\(badConf):1:1: error:"))
    }
}
