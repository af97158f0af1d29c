import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `standardConf` served on a TLS listener (`listen 127.0.0.1:0 tls`) with `leaf` (or the files
/// given) in the `tls { }` block; `tls` adds lines to the block (`http2 off`, `min_version 1.3`).
func tlsConf(
    upstream: String, certificate: String? = nil, key: String? = nil, tls: String = "", extra: String = "",
    admin: Bool = true
) throws -> String {
    let certs = try TestCertificates.shared()
    let conf = standardConf(
        upstream: upstream,
        extra: """
            \(extra)
            tls {
                certificate \(certificate ?? certs.leafChain)
                key         \(key ?? certs.leaf.key)
                \(tls)
            }
            """, admin: admin)
    return conf.replacingOccurrences(of: "listen 127.0.0.1:0\n", with: "listen 127.0.0.1:0 tls\n")
}

/// What one curl run saw.
struct CurlResult {
    var exitCode: Int32
    /// `-w`'s output.
    var writeOut: String
    var stderr: String
    /// The last response's head: status line excluded, names as sent.
    var headers: [(name: String, value: String)]
    var body: [UInt8]
    var status: Int

    var bodyText: String { String(decoding: body, as: UTF8.self) }

    func values(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }
}

/// The curl command (7.88 here: HTTP/2 through nghttp2) against the proxy's TLS port, trusting
/// the test CA.
enum Curl {
    /// Runs `curl ARGUMENTS` with `-sS`, the test CA, the head to a file, the body to a file.
    static func run(_ arguments: [String], trustCA: Bool = true, timeout: Double = 60) throws -> CurlResult {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("curl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let head = directory.appendingPathComponent("head").path
        let body = directory.appendingPathComponent("body").path
        let errors = directory.appendingPathComponent("stderr").path
        var all = ["-sS", "-D", head, "-o", body, "--stderr", errors]
        if trustCA { all += ["--cacert", try TestCertificates.shared().ca.certificate] }
        let run = try runToFiles("/usr/bin/curl", all + arguments, in: directory, timeout: timeout)
        let stderr = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        let headText = (try? String(contentsOfFile: head, encoding: .utf8)) ?? ""
        // Several heads (1xx) end up in the file: the last one counts.
        let lastHead = headText.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }.last ?? ""
        var lines = lastHead.components(separatedBy: "\r\n")
        let statusLine = lines.isEmpty ? "" : lines.removeFirst()
        let code = statusLine.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        let headers = lines.compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let bytes = (FileManager.default.contents(atPath: body)).map { [UInt8]($0) } ?? []
        return CurlResult(
            exitCode: run.status, writeOut: run.stdout, stderr: stderr, headers: headers, body: bytes, status: code)
    }
}

/// Tests/IntegrationTests/Scripts/h2raw.py, the raw HTTP/2-over-TLS client, run with Debian's
/// python3 (which has python3-hpack).
enum H2Raw {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Scripts/h2raw.py").path

    static func arguments(_ scenario: String, port: Int, trustCA: Bool, _ more: [String]) throws -> [String] {
        var arguments = [script, scenario, "--port", "\(port)"]
        if trustCA { arguments += ["--ca", try TestCertificates.shared().ca.certificate] }
        return arguments + more
    }

    /// Runs a scenario to its end; returns the JSON object of its last line.
    static func run(
        _ scenario: String, port: Int, trustCA: Bool = true, _ more: [String] = [], timeout: Double = 60
    ) throws -> H2Report {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("h2raw-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try runToFiles(
            "/usr/bin/python3", arguments(scenario, port: port, trustCA: trustCA, more), in: directory,
            timeout: timeout)
        return try report(of: run.stdout, status: run.status, what: "h2raw.py \(scenario)", stderr: run.stderr)
    }

    /// The JSON object on the last line of a scenario's output.
    static func report(of stdout: String, status: Int32, what: String, stderr: String = "") throws -> H2Report {
        let last = stdout.split(separator: "\n").last.map(String.init) ?? ""
        guard status == 0, let object = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any]
        else {
            throw TestFailure("\(what) exited with \(status); stdout:\n\(stdout)\nstderr:\n\(stderr)")
        }
        return H2Report(object)
    }

    /// Starts a scenario (a `--live` one prints its events as they happen).
    static func start(
        _ scenario: String, port: Int, trustCA: Bool = true, _ more: [String] = []
    ) throws
        -> ChildProcess
    {
        try ChildProcess(
            "/usr/bin/python3", arguments(scenario, port: port, trustCA: trustCA, more), name: "h2raw \(scenario)")
    }
}

/// h2raw.py's summary of one connection.
struct H2Report: CustomStringConvertible {
    var json: [String: Any]

    init(_ json: [String: Any]) { self.json = json }

    private func map(_ key: String) -> [String: Any] { json[key] as? [String: Any] ?? [:] }
    func status(_ stream: Int) -> Int? { map("status")["\(stream)"] as? Int }
    func bytes(_ stream: Int) -> Int { map("bytes")["\(stream)"] as? Int ?? 0 }
    func reset(_ stream: Int) -> Int? { map("reset")["\(stream)"] as? Int }
    func ended(_ stream: Int) -> Bool { (json["ended"] as? [Int] ?? []).contains(stream) }
    /// Response header fields of `stream`, names as sent (HTTP/2: lowercase).
    func headers(_ stream: Int) -> [[String]] { map("headers")["\(stream)"] as? [[String]] ?? [] }
    var goAways: [Int] { json["goaway"] as? [Int] ?? [] }
    var closed: Bool { json["closed"] as? Bool ?? false }
    var resets: [Int: Int] {
        Dictionary(
            uniqueKeysWithValues: map("reset").compactMap { key, value in
                Int(key).flatMap { k in (value as? Int).map { (k, $0) } }
            })
    }
    subscript(key: String) -> Any? { json[key] }

    var description: String {
        (try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])).map {
            String(decoding: $0, as: UTF8.self)
        } ?? "\(json)"
    }
}

/// HTTP/2 error codes (RFC 9113 section 7).
enum H2Error {
    static let noError = 0x0
    static let protocolError = 0x1
    static let internalError = 0x2
    static let refusedStream = 0x7
    static let cancel = 0x8
    static let enhanceYourCalm = 0xB
}

extension Proxy {
    /// The value of the metric line that starts with `series` (`name` or `name{labels}`), or nil.
    func metric(_ series: String) throws -> Double? {
        let admin = try #require(adminPort)
        let text = try HTTPClient(port: admin).request("GET", "/metrics").bodyText
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    /// Polls `/metrics` until `series` has `value` (bounded); returns what it saw last.
    func waitForMetric(_ series: String, toBe value: Double, timeout: Double = 10) throws -> Double? {
        let deadline = Date().addingTimeInterval(timeout)
        var seen = try metric(series)
        while seen != value && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
            seen = try metric(series)
        }
        return seen
    }

    var pid: Int32 { process.process.processIdentifier }

    /// The number of descriptors the proxy has open.
    var openDescriptors: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// Polls until the proxy's descriptor count is at most `baseline` (bounded); returns the last count.
    func descriptorsSettle(at baseline: Int, timeout: Double = 15) -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        var now = openDescriptors
        while now > baseline && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
            now = openDescriptors
        }
        return now
    }
}

/// Runs `executable` with stdout and stderr in files of `directory` (not pipes: the tool's
/// whole output is there once it has exited), bounded by `timeout` seconds.
func runToFiles(
    _ executable: String, _ arguments: [String], in directory: URL, timeout: Double
) throws -> (
    status: Int32, stdout: String, stderr: String
) {
    let out = directory.appendingPathComponent("stdout.txt")
    let err = directory.appendingPathComponent("stderr.txt")
    guard FileManager.default.createFile(atPath: out.path, contents: nil),
        FileManager.default.createFile(atPath: err.path, contents: nil)
    else { throw TestFailure("cannot create files in \(directory.path)") }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning {
        if Date() > deadline {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw TestTimeout(what: "\(executable) \(arguments.joined(separator: " ")) to exit")
        }
        Thread.sleep(forTimeInterval: 0.005)
    }
    let read = { (url: URL) in (try? String(contentsOf: url, encoding: .utf8)) ?? "" }
    return (process.terminationStatus, read(out), read(err))
}

/// `openssl x509 -serial` of a PEM certificate: its serial number in hex, as Python's ssl
/// module prints it (uppercase, an even number of digits).
func certificateSerial(_ path: String) throws -> String {
    let out = try TestCertificates.openssl(["x509", "-in", path, "-noout", "-serial"])
    return out.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "serial=", with: "")
}
