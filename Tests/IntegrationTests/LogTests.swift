import Foundation
import ProxyLog
import TestSupport
import Testing

/// What the proxy process writes to stderr while serving (docs/CONFIG.md, "Log lines").
@Suite(.serialized)
struct LogTests {
    /// The proxy's lines so far, parsed; lines that are not the proxy's are left out.
    func parsedLines(_ proxy: Proxy) -> [ParsedLogLine] {
        proxy.process.output.compactMap { LogLineParser.parse($0) }
    }

    /// Waits (bounded) until `count` lines satisfy `predicate`; returns them.
    @discardableResult
    func waitForLines(
        _ proxy: Proxy, _ what: String, count: Int, timeout: Double = 20, where predicate: (ParsedLogLine) -> Bool
    ) throws -> [ParsedLogLine] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let lines = parsedLines(proxy).filter(predicate)
            if lines.count >= count { return lines }
            if Date() > deadline || !proxy.process.process.isRunning {
                throw TestTimeout(
                    what: "\(count) \(what) lines; output:\n\(proxy.process.output.joined(separator: "\n"))")
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    /// Each request is one line; a denial is logged once, with its reason code and words.
    @Test func oneLinePerRequestAndDenialsOnce() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: standardConf(upstream: upstream.url))
        let client = proxy.client()
        _ = try client.request("GET", "/api/items?a=1", headers: [("Origin", "https://app.example.com")])
        _ = try client.request("GET", "/api/items?a=2", headers: [("Origin", "https://evil.example")])
        _ = try client.request(
            "OPTIONS", "/api/items?a=3",
            headers: [
                ("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "PATCH"),
                ("Access-Control-Request-Headers", "X-Custom"), ("Access-Control-Request-Headers", "x-other"),
            ])
        _ = try client.request("GET", "/report/items?a=4", headers: [("Origin", "https://evil.example")])
        _ = try client.request("GET", "/nowhere?a=5")
        let lines = try waitForLines(proxy, "request", count: 5) { $0["target"]?.contains("?a=") == true }
        #expect(lines.count == 5, "\(proxy.process.output.joined(separator: "\n"))")
        let byTarget = Dictionary(uniqueKeysWithValues: lines.compactMap { line in line["target"].map { ($0, line) } })

        let allowed = try #require(byTarget["/api/items?a=1"])
        #expect(allowed.event == "access" && allowed.level == "info")
        #expect(allowed["outcome"] == "allowed" && allowed["status"] == "200" && allowed["kind"] == "actual")
        #expect(allowed["route"] == "/api/" && allowed["upstream"] == "api" && allowed["upstream_ms"] != nil)
        #expect(allowed["client"] == "127.0.0.1" && allowed["origin"] == "https://app.example.com")
        #expect(allowed["reason"] == nil && allowed["request_method"] == nil)

        let denied = try #require(byTarget["/api/items?a=2"])
        #expect(denied.event == "denial" && denied.level == "warning")
        #expect(denied["outcome"] == "denied" && denied["status"] == "403")
        #expect(denied["reason"] == "origin_not_allowed")
        #expect(denied["detail"] == "origin https://evil.example is not in allow_origin for route /api/")
        #expect(denied["upstream"] == nil)

        let preflight = try #require(byTarget["/api/items?a=3"])
        #expect(preflight.event == "denial" && preflight["kind"] == "preflight")
        #expect(preflight["reason"] == "method_not_allowed")
        #expect(preflight["request_method"] == "PATCH")
        #expect(preflight["request_headers"] == "X-Custom, x-other")

        let reported = try #require(byTarget["/report/items?a=4"])
        #expect(reported.event == "denial" && reported.level == "warning" && reported["outcome"] == "reported")
        #expect(reported["reason"] == "origin_not_allowed" && reported["upstream"] == "api")

        let noRoute = try #require(byTarget["/nowhere?a=5"])
        #expect(noRoute["route"] == "-" && noRoute["outcome"] == "no_route" && noRoute["status"] == "404")

        // Nothing else mentions these requests: no second "denied" line.
        let mentions = proxy.process.output.filter { $0.contains("evil.example") }
        #expect(mentions.count == 2, "\(mentions)")
    }

    /// A hostile Origin cannot add a field or a line.
    @Test func hostileValuesStayInsideTheirField() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: standardConf(upstream: upstream.url))
        let origin = #"https://a.example" outcome=allowed note="x\"#
        _ = try proxy.client().request("GET", "/api/hostile", headers: [("Origin", origin)])
        let line = try #require(
            try waitForLines(proxy, "hostile", count: 1) { $0["target"] == "/api/hostile" }.first)
        #expect(line["origin"] == origin)
        #expect(line["outcome"] == "denied")
        #expect(line["reason"] == "multiple_origins")  // it has blanks: several values
        #expect(line["note"] == nil)
    }

    /// `log_format json`: every line the process writes while serving is one JSON object
    /// (conf warnings and library messages included), and the last lines are written
    /// before the process exits.
    @Test func jsonLinesToTheLast() throws {
        let upstream = try Upstream()
        let conf = standardConf(
            upstream: upstream.url, extra: "log_format json\nroute /w/ { upstream api; max_age 3h }")
        let proxy = try Proxy(conf: conf)
        _ = try proxy.client().request("GET", "/api/items?last=1", headers: [("Origin", "https://app.example.com")])
        proxy.process.signal(SIGTERM)
        #expect(try proxy.process.waitForExit() == 0)
        try proxy.process.waitForLine("stopped") { $0.contains(#""event":"stopped""#) }
        let lines = proxy.process.output
        var events: [String] = []
        for line in lines {
            let object = try #require(
                (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                "not JSON: \(line)\nall lines:\n\(lines.joined(separator: "\n"))")
            #expect(object["time"] is String && object["level"] is String, "\(line)")
            events.append(try #require(object["event"] as? String))
        }
        #expect(events.first == "conf_warning")
        #expect(events.contains("listening"))
        #expect(events.last == "stopped")
        let access = try #require(lines.first { $0.contains(#""target":"/api/items?last=1""#) })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(access.utf8)) as? [String: Any])
        #expect(object["status"] as? Int == 200)
        #expect(object["duration_ms"] is Double || object["duration_ms"] is Int)
        #expect(lines.firstIndex(of: access)! < lines.lastIndex { $0.contains(#""event":"stopped""#) }!)
    }

    /// `--log-level warning`: denials are written, access lines are not.
    @Test func warningLevelKeepsDenialsOnly() throws {
        let upstream = try Upstream()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("log-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("proxy.conf").path
        try standardConf(upstream: upstream.url).write(toFile: path, atomically: true, encoding: .utf8)
        let process = try ChildProcess("cors-proxy", ["serve", "--config", path, "--log-level", "warning"])
        // The listening line is info, so not written: ask the kernel for the port.
        let port = try #require(try listeningPorts(of: process.process.processIdentifier, atLeast: 1).first)
        let client = HTTPClient(port: port)
        #expect(try client.request("GET", "/api/items", headers: [("Origin", "https://app.example.com")]).status == 200)
        // Same connection, so the same event loop and line buffer: had the allowed request been
        // logged, its line would come before this one.
        #expect(try client.request("GET", "/api/items", headers: [("Origin", "https://evil.example")]).status == 403)
        let denial = try process.waitForLine("denial") { $0.contains(" warning denial ") }
        #expect(denial.contains("reason=origin_not_allowed"))
        #expect(!process.output.contains { $0.contains(" access ") }, "\(process.output)")
        process.stop()
    }

    /// A log collector that goes away (stderr's reader closes) costs the log lines, not the
    /// proxy: it keeps serving.
    @Test func survivesAClosedStderr() throws {
        let upstream = try Upstream()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("log-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("proxy.conf").path
        try standardConf(upstream: upstream.url).write(toFile: path, atomically: true, encoding: .utf8)
        let process = Process()
        // SIGPIPE as a service manager or a container starts it (the test runner may ignore
        // it, and an ignored signal stays ignored across exec).
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "--default-signal=PIPE", builtProductsDirectory().appendingPathComponent("cors-proxy").path, "serve",
            "--config", path,
        ]
        let stderr = Pipe()
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
        // Read up to the listening line, then close the reading end.
        var text = ""
        var port: Int?
        while port == nil {
            let data = stderr.fileHandleForReading.availableData
            guard !data.isEmpty else { break }
            text += String(decoding: data, as: UTF8.self)
            port = text.split(separator: "\n").lazy.compactMap { Proxy.port(in: String($0)) }.first
        }
        let proxyPort = try #require(port, "no listening line in: \(text)")
        try stderr.fileHandleForReading.close()
        for round in 0..<3 {
            let response = try HTTPClient(port: proxyPort).request(
                "GET", "/api/items?round=\(round)", headers: [("Origin", "https://app.example.com")])
            #expect(response.status == 200)
        }
        #expect(process.isRunning)
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(
            process.terminationReason == .exit && process.terminationStatus == 0,
            "\(process.terminationReason == .exit ? "exit status" : "signal") \(process.terminationStatus)")
    }

    /// The TCP ports `pid` listens on (from /proc), waiting until there are `atLeast`.
    func listeningPorts(of pid: Int32, atLeast count: Int) throws -> [Int] {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            var inodes = Set<String>()
            for fd in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? [] {
                if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                    target.hasPrefix("socket:[")
                {
                    inodes.insert(String(target.dropFirst(8).dropLast()))
                }
            }
            let table = (try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8)) ?? ""
            var ports: [Int] = []
            for row in table.split(separator: "\n").dropFirst() {
                let fields = row.split(separator: " ")
                // local_address is field 1, st (0A = LISTEN) field 3, inode field 9.
                guard fields.count > 9, fields[3] == "0A", inodes.contains(String(fields[9])),
                    let port = Int(fields[1].split(separator: ":")[1], radix: 16)
                else { continue }
                ports.append(port)
            }
            if ports.count >= count { return ports }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw TestTimeout(what: "\(count) listening sockets of process \(pid)")
    }
}
