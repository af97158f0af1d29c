import Foundation
import TestSupport

/// The integration tests' name for a child process.
typealias TestProcess = ChildProcess

/// The demo upstream on 127.0.0.1, on a free port.
final class Upstream: @unchecked Sendable {
    let process: TestProcess
    let port: Int

    init() throws {
        process = try TestProcess("demo-upstream", ["--listen", "127.0.0.1:0", "--quiet"])
        let line = try process.waitForLine("listening line") { $0.hasPrefix("listening on ") }
        guard let port = line.split(separator: ":").last.flatMap({ Int($0) }) else {
            throw TestTimeout(what: "a port in \(line)")
        }
        self.port = port
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// What the upstream received so far (its `/__requests` control endpoint).
    func receivedRequests() throws -> [[String: Any]] {
        let response = try HTTPClient(port: port).request("GET", "/__requests")
        let json = try JSONSerialization.jsonObject(with: Data(response.body))
        return json as? [[String: Any]] ?? []
    }

    func receivedTargets() throws -> [String] {
        try receivedRequests().compactMap { $0["target"] as? String }
    }

    func reset() throws { _ = try HTTPClient(port: port).request("POST", "/__reset") }

    func stats() throws -> [String: Int] {
        let response = try HTTPClient(port: port).request("GET", "/__stats")
        return (try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Int]) ?? [:]
    }
}

/// `cors-proxy serve` with a conf written to a temporary file.
final class Proxy: @unchecked Sendable {
    let process: TestProcess
    let port: Int
    let adminPort: Int?
    let confPath: String

    /// `conf` may use `LISTEN` and `ADMIN` placeholders; they become 127.0.0.1:0.
    init(
        conf: String, environment: [String: String] = [:], extraArguments: [String] = [], unprivileged: Bool = false,
        nice: Int? = nil
    ) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cors-proxy-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path)
        confPath = dir.appendingPathComponent("proxy.conf").path
        try conf.write(toFile: confPath, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: confPath)
        process = try TestProcess(
            "cors-proxy", ["serve", "--config", confPath] + extraArguments, environment: environment,
            unprivileged: unprivileged, nice: nice)
        let line = try process.waitForLine("listening line") { Proxy.port(in: $0) != nil }
        port = Proxy.port(in: line) ?? 0
        if conf.contains("admin") {
            let adminLine = try process.waitForLine("admin listening line") { $0.contains("admin listening") }
            adminPort = adminLine.split(separator: ":").last.flatMap { Int($0.prefix { $0.isNumber }) }
        } else {
            adminPort = nil
        }
    }

    /// The port of a `listening` line, text (`… listening address=… port=8080`) or JSON
    /// (`{…"event":"listening",…,"port":"8080"}`).
    static func port(in line: String) -> Int? {
        let marker: String
        if line.contains(" listening"), line.contains("port=") {
            marker = "port="
        } else if line.contains(#""event":"listening""#), line.contains(#""port":""#) {
            marker = #""port":""#
        } else {
            return nil
        }
        guard let range = line.range(of: marker) else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }

    func client() -> HTTPClient { HTTPClient(port: port) }

    func rewrite(conf: String) throws { try conf.write(toFile: confPath, atomically: true, encoding: .utf8) }

    deinit { process.stop() }
}
