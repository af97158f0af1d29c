import Foundation
import ProxyLog

#if canImport(Glibc)
    import Glibc
#endif

/// 2026-12-06T01:23:07Z, the time the golden lines are rendered at.
let goldenSecond: Int64 = 1_796_520_187

/// Renders an access record at a fixed time.
func render(_ record: AccessRecord, _ format: LogFormat, nanoseconds: Int = 123_456_789) -> String {
    let buffer = LineBuffer()
    var clock = TimestampFormatter()
    record.render(format, into: buffer, clock: &clock, seconds: goldenSecond, nanoseconds: nanoseconds)
    return buffer.text
}

/// The access line of the brief's example: an allowed, forwarded GET.
func allowedGet() -> AccessRecord {
    AccessRecord(
        event: .access, level: .info, client: "127.0.0.1", method: "GET", target: "/api/items", route: "/api/",
        kind: "actual", status: 200, outcome: "allowed", durationNanoseconds: 412_300,
        origin: "https://app.example.com",
        bytesIn: 0, bytesOut: 512, upstream: "api", upstreamNanoseconds: 300_900)
}

/// A file the writer under test writes to; read back after a flush.
final class TemporaryLogFile {
    let path: String
    let fd: Int32

    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("proxylog-\(UUID().uuidString).log").path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0o644)
    }

    deinit {
        close(fd)
        unlink(path)
    }

    var text: String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
    var lines: [String] { text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }
}
