import Foundation
import TestSupport
import Testing

/// `check`, `explain` and `serve`'s exit codes, signals and admin endpoints, as a user runs them.
@Suite(.serialized)
struct CommandLineTests {
    /// Runs `cors-proxy ARGS` to completion.
    func run(
        _ arguments: [String], environment: [String: String] = [:]
    ) throws -> (status: Int32, stdout: String, stderr: String) {
        try runCORSProxy(arguments, environment: environment)
    }

    func writeConf(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString).conf").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    var examplePath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("proxy.conf.example").path
    }

    @Test func checkPassesTheExampleWithoutWarnings() throws {
        let r = try run(["check", "--config", examplePath])
        #expect(r.status == 0)
        #expect(r.stderr.isEmpty, "\(r.stderr)")
        #expect(r.stdout.contains("/api/public/"))
        #expect(r.stdout.contains("= /healthz"))
    }

    @Test func checkReportsEveryErrorWithPosition() throws {
        let path = try writeConf("listen 127.0.0.1:8080\nbogus 1\nroute /a/ {\n  allow_origin https://x.example/\n}\n")
        let r = try run(["check", "--config", path])
        #expect(r.status == 1)
        let lines = r.stderr.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("\(path):2:1: error:") }, "\(r.stderr)")
        #expect(lines.contains { $0.hasPrefix("\(path):3:1: error:") }, "\(r.stderr)")
        #expect(lines.contains { $0.hasPrefix("\(path):4:16: error:") }, "\(r.stderr)")
    }

    @Test func configFallsBackToTheEnvironment() throws {
        let r = try run(["check"], environment: ["CORS_PROXY_CONFIG": examplePath])
        #expect(r.status == 0)
    }

    @Test func explainAllowedDeniedAndInvalid() throws {
        let allowed = try run([
            "explain", "--config", examplePath, "--origin", "https://app.example.com", "--method", "PUT", "--header",
            "Content-Type", "--preflight", "/api/items",
        ])
        #expect(allowed.status == 0, "\(allowed)")
        #expect(allowed.stdout.contains("Access-Control-Allow-Origin: https://app.example.com"))
        #expect(allowed.stdout.contains("Access-Control-Allow-Credentials: true"))

        let denied = try run(["explain", "--config", examplePath, "--origin", "https://evil.example", "/api/items"])
        #expect(denied.status == 1)
        #expect(denied.stdout.contains("origin_not_allowed"))
        #expect(!denied.stdout.contains("Access-Control-Allow-Origin"))

        let invalid = try run(["explain", "--config", try writeConf("nonsense"), "--origin", "https://a.example", "/"])
        #expect(invalid.status == 2)
    }

    /// `explain --websocket`: a handshake's origin check, as the proxy makes it: tunnelled (exit
    /// 0, no header added to the 101), refused with the reason code (exit 1), 501 with the reason
    /// `websocket off` (exit 1), and 2 for an invalid conf.
    @Test func explainWebSocket() throws {
        let noEnv = ["API_URL": ""]
        func explain(
            _ arguments: [String], conf: String? = nil
        ) throws -> (status: Int32, stdout: String, stderr: String) {
            try run(["explain", "--config", conf ?? examplePath, "--websocket"] + arguments, environment: noEnv)
        }
        let page = "http://127.0.0.1:5173"
        let allowed = try explain(["--origin", page, "/api/ws/echo"])
        #expect(allowed.status == 0, "\(allowed)")
        #expect(
            allowed.stdout == """
                route: /api/ -> http://127.0.0.1:3000
                decision: forwarded (tunnelled): origin allowed; the 101 goes back as the upstream sent it


                """)

        let denied = try explain(["--origin", page, "/api/admin/ws/echo"])
        #expect(denied.status == 1, "\(denied)")
        #expect(
            denied.stdout == """
                route: /api/admin/ -> http://127.0.0.1:3000
                decision: denied: 403, nothing forwarded
                reason: origin_not_allowed: origin \(page) is not in allow_origin for route /api/admin/

                Vary: Origin

                """)

        let off = try explain(["--origin", "https://anyone.example", "/api/public/ws"])
        #expect(off.status == 1, "\(off)")
        #expect(
            off.stdout == """
                route: /api/public/ -> http://127.0.0.1:3000
                decision: denied: 501, nothing forwarded (websocket off)
                reason: websocket off: route /api/public/ answers WebSocket handshakes with 501 (websocket off)

                Access-Control-Allow-Origin: *
                Access-Control-Expose-Headers: X-Request-Id

                """)

        let malformed = try explain(["--origin", "https://app.example.com:0443", "/api/ws"])
        #expect(malformed.status == 1)
        #expect(malformed.stdout.contains("reason: malformed_origin: "), "\(malformed.stdout)")

        let sameOrigin = try explain(["--host", "127.0.0.1:8080", "--origin", "http://127.0.0.1:8080", "/api/admin/ws"])
        #expect(sameOrigin.status == 0, "\(sameOrigin)")
        #expect(sameOrigin.stdout.contains("decision: forwarded (tunnelled): same-origin"))
        let noOrigin = try explain(["/api/admin/ws"])
        #expect(noOrigin.status == 0)
        #expect(noOrigin.stdout.contains("decision: forwarded (tunnelled): no Origin"))
        let corsOff = try explain(["--origin", "https://evil.example", "/healthz"])
        #expect(corsOff.status == 0)
        #expect(corsOff.stdout.contains("decision: forwarded (tunnelled): cors off, no origin check"))
        let noRoute = try explain(["--origin", page, "/elsewhere"])
        #expect(noRoute.status == 1)
        #expect(noRoute.stdout.contains("decision: denied: 404, no route matches this path"))

        let report = try writeConf(
            "listen 127.0.0.1:0\nupstream a http://127.0.0.1:1\nroute / { upstream a; allow_origin https://a.example; enforce report }\n"
        )
        let reported = try explain(["--origin", "https://evil.example", "/ws"], conf: report)
        #expect(reported.status == 1)
        #expect(reported.stdout.contains("decision: denied: enforce report, tunnelled anyway; a warning is logged"))
        #expect(reported.stdout.contains("reason: origin_not_allowed: "))

        let invalid = try explain(["--origin", page, "/"], conf: try writeConf("nonsense"))
        #expect(invalid.status == 2)
        let misuse = try explain(["--preflight", "--origin", page, "/api/ws"])
        #expect(misuse.status != 0 && misuse.status != 1 && misuse.status != 2, "\(misuse)")
        #expect(misuse.stderr.contains("--websocket explains a handshake"), "\(misuse.stderr)")
        #expect(try run(["explain", "--help"]).stdout.contains("--websocket"))
    }

    @Test func serveRefusesAnInvalidConfAndAnUnbindablePort() throws {
        let invalid = try run(["serve", "--config", try writeConf("listen 127.0.0.1:0\nroute /a/ { }\n")])
        #expect(invalid.status != 0)
        #expect(invalid.stderr.contains("error:"))

        // Hold a port, then ask the proxy to bind it.
        let upstream = try Upstream()
        let busy = try run([
            "serve", "--config",
            try writeConf("listen 127.0.0.1:\(upstream.port)\nupstream a http://127.0.0.1:1\nroute / { upstream a }\n"),
        ])
        #expect(busy.status != 0)
        #expect(busy.stderr.contains("127.0.0.1:\(upstream.port)"))
    }

    /// The image runs as a non-root user: every socket option must be one an ordinary user may set.
    @Test func servesWhenNotRoot() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: standardConf(upstream: upstream.url), unprivileged: true)
        let r = try proxy.client().request("GET", "/api/items", headers: [("Origin", "https://app.example.com")])
        #expect(r.status == 200)
        #expect(r.values("Access-Control-Allow-Origin") == ["https://app.example.com"])
    }

    @Test func adminEndpointsAndMetrics() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: standardConf(upstream: upstream.url, admin: true))
        let admin = try #require(proxy.adminPort)
        #expect(try HTTPClient(port: admin).request("GET", "/healthz").status == 200)
        #expect(try HTTPClient(port: admin).request("GET", "/readyz").status == 200)
        _ = try proxy.client().request("GET", "/api/items", headers: [("Origin", "https://evil.example")])
        _ = try proxy.client().request("GET", "/dead/x")
        let metrics = try HTTPClient(port: admin).request("GET", "/metrics").bodyText
        #expect(
            metrics.contains(#"cors_proxy_requests_total{route="/api/",kind="actual",outcome="denied"} 1"#),
            "\(metrics)")
        #expect(metrics.contains(#"cors_proxy_denials_total{route="/api/",reason="origin_not_allowed"} 1"#))
        #expect(metrics.contains(#"cors_proxy_upstream_errors_total{upstream="dead",kind="connect"} 1"#))
        #expect(metrics.contains("cors_proxy_request_duration_seconds"))
    }

    /// `nice -n 7 cors-proxy serve` (or systemd's `Nice=`) must reach the threads doing the
    /// work. They are created from async code, whose libdispatch threads sit at nice 0.
    @Test func theWorkingThreadsRunAtTheNiceTheProxyWasStartedWith() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(
            conf: standardConf(upstream: upstream.url), extraArguments: ["--event-loops", "2", "--curl-workers", "2"],
            nice: 7)
        #expect(
            try proxy.client().request("GET", "/api/items", headers: [("Origin", "https://app.example.com")]).status
                == 200)
        let pid = proxy.process.process.processIdentifier
        // A worker thread names itself first thing, but may not have yet: look until all four show.
        func niceByThread() throws -> [String: [Int]] {
            var result: [String: [Int]] = [:]
            for task in try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") {
                let name = try String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                let stat = try String(contentsOfFile: "/proc/\(pid)/task/\(task)/stat", encoding: .utf8)
                // Fields after the parenthesised name: state is field 3, nice is field 19.
                let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
                result[name, default: []].append(Int(fields[16])!)
            }
            return result
        }
        var threads = try niceByThread()
        let deadline = Date().addingTimeInterval(10)
        while threads.filter({ $0.key.hasPrefix("NIO-ELT") || $0.key == "curl-worker" }).values.joined().count < 4,
            Date() < deadline
        {
            Thread.sleep(forTimeInterval: 0.02)
            threads = try niceByThread()
        }
        let workers = threads.filter { $0.key.hasPrefix("NIO-ELT") || $0.key == "curl-worker" }
        #expect(workers.values.joined().count == 4, "\(threads)")
        #expect(workers.values.joined().allSatisfy { $0 == 7 }, "\(threads)")
    }

    /// With no flags, one event loop and one curl worker per CPU the process may run on, as
    /// `nproc` counts them: under `taskset -c 0`, one of each, whatever the machine has.
    @Test func theDefaultThreadCountsFollowTheCPUsTheProcessMayUse() throws {
        let conf = try writeConf(standardConf(upstream: "http://127.0.0.1:1"))
        let binary = builtProductsDirectory().appendingPathComponent("cors-proxy").path
        let proxy = try ChildProcess(
            "/usr/bin/taskset", ["-c", "0", binary, "serve", "--config", conf], name: "cors-proxy")
        try proxy.waitForLine("listening line") { $0.contains(" listening") && $0.contains("port=") }
        let pid = proxy.process.processIdentifier
        func threadNames() throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task").map {
                try String(contentsOfFile: "/proc/\(pid)/task/\($0)/comm", encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }
        // The curl worker names itself first thing once it runs: look until it shows (bounded).
        var names = try threadNames()
        let deadline = Date().addingTimeInterval(10)
        while !names.contains("curl-worker") && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
            names = try threadNames()
        }
        #expect(names.filter { $0.hasPrefix("NIO-ELT") }.count == 1, "\(names)")
        #expect(names.filter { $0 == "curl-worker" }.count == 1, "\(names)")
    }

    /// A soft descriptor limit of 1024 (systemd's default) would cap a proxy at ~500 clients:
    /// serve raises it to the hard limit, as Go programs do.
    @Test func serveRaisesTheOpenFileLimitToTheHardLimit() throws {
        let conf = try writeConf(standardConf(upstream: "http://127.0.0.1:1"))
        let binary = builtProductsDirectory().appendingPathComponent("cors-proxy").path
        let proxy = try ChildProcess(
            "/usr/bin/prlimit", ["--nofile=256:4096", binary, "serve", "--config", conf], name: "cors-proxy")
        try proxy.waitForLine("listening line") { $0.contains(" listening") && $0.contains("port=") }
        let limits = try String(contentsOfFile: "/proc/\(proxy.process.processIdentifier)/limits", encoding: .utf8)
        let line = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
        #expect(line.split(separator: " ", omittingEmptySubsequences: true).suffix(3) == ["4096", "4096", "files"])
    }

    /// `cors-proxy VERSION`, exit 0, no conf read: the default conf path does not exist here.
    @Test func versionPrintsNameAndVersionWithoutAConf() throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("no-\(UUID().uuidString).conf").path
        for arguments in [["--version"], ["serve", "--version"]] {
            let r = try run(arguments, environment: ["CORS_PROXY_CONFIG": missing])
            #expect(r.status == 0, "\(arguments): \(r)")
            #expect(r.stderr.isEmpty, "\(arguments): \(r.stderr)")
            #expect(r.stdout.wholeMatch(of: /cors-proxy \d+\.\d+\.\d+\n/) != nil, "\(arguments): \(r.stdout)")
        }
    }

    /// The newest release in CHANGELOG.md is the version the binary reports, so a release bumps both.
    @Test func changelogNamesTheVersionTheBinaryReports() throws {
        let changelog = try String(
            contentsOf: URL(fileURLWithPath: examplePath).deletingLastPathComponent().appendingPathComponent(
                "CHANGELOG.md"), encoding: .utf8)
        let releases = changelog.split(separator: "\n").compactMap {
            $0.wholeMatch(of: /## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}/)?.output.1
        }
        let newest = try #require(releases.first)
        #expect(try run(["--version"]).stdout == "cors-proxy \(newest)\n")
    }

    /// `/metrics` says which build is serving, and it is the version `--version` prints.
    @Test func metricsExportBuildInfo() throws {
        let printed = try run(["--version"]).stdout
        let version = String(printed.dropFirst("cors-proxy ".count).dropLast())
        let upstream = try Upstream()
        let proxy = try Proxy(conf: standardConf(upstream: upstream.url, admin: true))
        let admin = try #require(proxy.adminPort)
        let text = try HTTPClient(port: admin).request("GET", "/metrics").bodyText
        let scrape = try PrometheusScrape(text)
        #expect(scrape.types["cors_proxy_build_info"] == "gauge")
        // Exactly as documented: the value is the integer 1.
        #expect(text.split(separator: "\n").contains("cors_proxy_build_info{version=\"\(version)\"} 1"))
        #expect(
            scrape.samples(named: "cors_proxy_build_info")
                == [PrometheusSample(name: "cors_proxy_build_info", labels: ["version": version], value: 1)])
    }

    @Test func sighupReloadsValidAndKeepsOldOnInvalid() throws {
        let upstream = try Upstream()
        let conf = standardConf(upstream: upstream.url)
        let proxy = try Proxy(conf: conf)
        let evil = [("Origin", "https://new.example")]
        #expect(try proxy.client().request("GET", "/api/items", headers: evil).status == 403)

        try proxy.rewrite(
            conf: conf.replacingOccurrences(
                of: "https://app.example.com https://", with: "https://new.example https://app.example.com https://"))
        proxy.process.signal(SIGHUP)
        try proxy.process.waitForLine("reload") { $0.contains("conf reloaded") }
        #expect(try proxy.client().request("GET", "/api/items", headers: evil).status == 200)

        try proxy.rewrite(conf: "listen 127.0.0.1:0\nroute /x/ {\n")
        proxy.process.signal(SIGHUP)
        try proxy.process.waitForLine("reload refused") { $0.contains("reload refused") }
        #expect(try proxy.client().request("GET", "/api/items", headers: evil).status == 200)
    }

    /// Regexes the pre-release dialect accepted and the linear-time engine refuses (CHANGELOG.md,
    /// 1.0.0 "Changed"): `check` fails, and a SIGHUP reload with one is refused, counted, and the
    /// old conf keeps serving.
    @Test(arguments: [
        #"~^https://\bapp\.example\.com$"#,  // word boundary
        #"~^https://(?=app)[a-z]+\.example\.com$"#,  // lookahead
        #"~^https://[a-z]+(?<!evil)\.example\.com$"#,  // negative lookbehind
        #"~^https://([a-z])\1\.example\.com$"#,  // back-reference
        #"~^https://[a-z]++\.example\.com$"#,  // possessive quantifier
        #"~^https://a{1, 2}\.example\.com$"#,  // a space in a repeat count
    ])
    func regexOutsideTheLinearDialectIsRefusedAtLoadAndOnReload(_ regex: String) throws {
        let upstream = try Upstream()
        let conf = standardConf(upstream: upstream.url, admin: true)
        let withRegex = standardConf(
            upstream: upstream.url, extra: "route /x/ { upstream api; allow_origin \"\(regex)\" }", admin: true)

        let check = try run(["check", "--config", try writeConf(withRegex)])
        #expect(check.status == 1)
        #expect(check.stderr.contains("invalid regular expression"), "\(check.stderr)")

        let proxy = try Proxy(conf: conf)
        try proxy.rewrite(conf: withRegex)
        proxy.process.signal(SIGHUP)
        try proxy.process.waitForLine("reload refused") { $0.contains("reload refused") }
        let app = [("Origin", "https://app.example.com")]
        #expect(try proxy.client().request("GET", "/api/items", headers: app).status == 200)
        #expect(try proxy.client().request("GET", "/x/items", headers: app).status == 404)  // not installed
        let admin = try #require(proxy.adminPort)
        let scrape = try PrometheusScrape(try HTTPClient(port: admin).request("GET", "/metrics").bodyText)
        let reloads = Dictionary(
            uniqueKeysWithValues: scrape.samples(named: "cors_proxy_reloads_total").map {
                ($0.labels["outcome"] ?? "?", $0.value)
            })
        #expect(reloads == ["ok": 0, "error": 1])
    }

    @Test func sigtermDrainsInFlightRequests() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: standardConf(upstream: upstream.url, admin: true))
        let client = proxy.client()
        try client.send("GET /api/slow/1000 HTTP/1.1\r\nHost: x\r\n\r\n")
        // Let the request reach the upstream before the signal.
        let deadline = Date().addingTimeInterval(10)
        while try upstream.receivedTargets().isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        proxy.process.signal(SIGTERM)
        let r = try client.readResponse()
        #expect(r.status == 200)
        #expect(r.value("Connection") == "close")
        #expect(try proxy.process.waitForExit() == 0)
        // The listener is gone.
        #expect(throws: (any Error).self) { _ = try proxy.client().request("GET", "/api/items") }
    }
}
