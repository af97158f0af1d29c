import Foundation
import Synchronization
import Testing

/// The directory holding the package's built executables (beside the test bundle).
func builtProductsDirectory() -> URL {
    var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    // .build/debug/cors-proxyPackageTests.xctest (a file on Linux)
    while url.pathComponents.count > 1 {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("cors-proxy").path) { return url }
    }
    return URL(fileURLWithPath: ".build/debug")
}

struct TestTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}

/// A child process whose stdout and stderr are collected line by line.
final class TestProcess: @unchecked Sendable {
    let process = Process()
    private let lines = Mutex<[String]>([])
    private let stdout = Pipe()
    private let stderr = Pipe()
    let name: String

    /// `unprivileged`: when the tests run as root, run the child as `nobody` (via setpriv),
    /// the way the container image and Kubernetes run the proxy. `nice`: start it under
    /// `nice -n` (nice execs, so the process id is the child's).
    init(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:], unprivileged: Bool = false,
        nice: Int? = nil
    ) throws {
        name = executable
        let binary = builtProductsDirectory().appendingPathComponent(executable)
        if let nice {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/nice")
            process.arguments = ["-n", "\(nice)", binary.path] + arguments
        } else if unprivileged && getuid() == 0 {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid=nobody", "--regid=nogroup", "--clear-groups", binary.path] + arguments
        } else {
            process.executableURL = binary
            process.arguments = arguments
        }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardOutput = stdout
        process.standardError = stderr
        for pipe in [stdout, stderr] {
            let partial = Mutex<String>("")
            pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
                let data = handle.availableData
                guard !data.isEmpty else {
                    handle.readabilityHandler = nil
                    return
                }
                let complete: [String] = partial.withLock { buffer in
                    buffer += String(decoding: data, as: UTF8.self)
                    var parts = buffer.components(separatedBy: "\n")
                    buffer = parts.removeLast()
                    return parts
                }
                self?.lines.withLock { $0.append(contentsOf: complete) }
            }
        }
        try process.run()
    }

    var output: [String] { lines.withLock { $0 } }

    /// Waits (polling, bounded) for a line matching `predicate`; returns it.
    @discardableResult
    func waitForLine(_ what: String, timeout: Double = 20, where predicate: (String) -> Bool) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = output.first(where: predicate) { return line }
            if !process.isRunning {
                if let line = output.first(where: predicate) { return line }
                throw TestTimeout(
                    what:
                        "\(what): \(name) exited with \(process.terminationStatus); output:\n\(output.joined(separator: "\n"))"
                )
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        throw TestTimeout(what: "\(what) from \(name); output so far:\n\(output.joined(separator: "\n"))")
    }

    func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Waits for exit (bounded); returns the exit status.
    func waitForExit(timeout: Double = 20) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline { throw TestTimeout(what: "\(name) to exit") }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return process.terminationStatus
    }

    func stop() {
        if process.isRunning {
            signal(SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Sanitizer reports in the child's output (under `swift test --sanitize=…` the binaries are instrumented).
    var sanitizerReports: [String] {
        output.filter {
            $0.contains("ThreadSanitizer") || $0.contains("AddressSanitizer") || $0.contains("LeakSanitizer")
        }
    }

    deinit {
        stop()
        let reports = sanitizerReports
        if !reports.isEmpty {
            Issue.record("\(name) reported sanitizer findings:\n\(output.joined(separator: "\n"))")
        }
    }
}

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
        let line = try process.waitForLine("listening line") { $0.contains(" listening") && $0.contains("port=") }
        port = Proxy.port(in: line) ?? 0
        if conf.contains("admin") {
            let adminLine = try process.waitForLine("admin listening line") { $0.contains("admin listening") }
            adminPort = adminLine.split(separator: ":").last.flatMap { Int($0.prefix { $0.isNumber }) }
        } else {
            adminPort = nil
        }
    }

    static func port(in line: String) -> Int? {
        guard let range = line.range(of: "port=") else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }

    func client() -> HTTPClient { HTTPClient(port: port) }

    func rewrite(conf: String) throws { try conf.write(toFile: confPath, atomically: true, encoding: .utf8) }

    deinit { process.stop() }
}
