// ns of CPU per access line: ProxyLog's renderer (text and JSON), the whole path through
// an event loop's buffer and the writer thread to /dev/null, and the swift-log
// StreamLogHandler line the proxy wrote before (to stderr: run with 2>/dev/null).
//
//   swift run -c release LogBench [lines] [render|path|old]   (default: 1,000,000 lines, all three)

import Foundation
import Logging
import NIOCore
import NIOEmbedded
import ProxyLog

#if canImport(Glibc)
    import Glibc
#endif

let lines = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 1_000_000
let only = CommandLine.arguments.dropFirst(2).first
func runs(_ part: String) -> Bool { only == nil || only == part || only?.hasPrefix(part + "-") == true }

/// CPU time of this thread, in nanoseconds.
func threadCPU() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

/// CPU time of the whole process (the writer thread included), in nanoseconds.
func processCPU() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

/// Best of five runs of `body` (which writes `lines` lines), in ns per line.
func measure(_ name: String, clock: () -> UInt64 = threadCPU, _ body: () -> Void) -> Double {
    var best = Double.infinity
    for _ in 0..<5 {
        let start = clock()
        body()
        best = min(best, Double(clock() - start) / Double(lines))
    }
    print(name.padding(toLength: 58, withPad: " ", startingAt: 0), String(format: "%7.0f ns/line", best))
    return best
}

/// An allowed, forwarded GET: the line every proxied request writes.
let access = AccessRecord(
    event: .access, level: .info, client: "127.0.0.1", method: "GET", target: "/api/items?page=2", route: "/api/",
    kind: "actual", status: 200, outcome: "allowed", durationNanoseconds: 412_300, origin: "https://app.example.com",
    bytesIn: 0, bytesOut: 512, upstream: "api", upstreamNanoseconds: 300_900)

/// An allowed preflight: the request the old line cost 3x of.
let preflight = AccessRecord(
    event: .access, level: .info, client: "127.0.0.1", method: "OPTIONS", target: "/api/items", route: "/api/",
    kind: "preflight", status: 204, outcome: "allowed", durationNanoseconds: 10_900,
    origin: "https://app.example.com", requestMethod: "PUT", requestHeaders: "content-type, x-requested-with",
    bytesIn: 0, bytesOut: 312)

print("\(lines) lines per run, best of 5, CPU time\n")

// 1. Rendering only, into a reused buffer (what the event loop pays besides the hand-off).
for (name, record) in [("forwarded GET", access), ("preflight", preflight)] where runs("render") {
    for format in LogFormat.allCases where only?.hasPrefix("render-") != true || only == "render-\(format.rawValue)" {
        let buffer = LineBuffer(capacity: 64 * 1024)
        var clock = TimestampFormatter()
        _ = measure("render \(format.rawValue), \(name)") {
            for _ in 0..<lines {
                if buffer.count > 60 * 1024 { buffer.removeAll() }
                record.render(format, into: buffer, clock: &clock)
            }
        }
    }
}
print("")

// 2. The whole path: the loop's buffer, one hand-off per 64 lines (a busy loop tick), the
// writer thread's writev to /dev/null. Process CPU: the writer thread's work counts.
let devNull = open("/dev/null", O_WRONLY)
for format in LogFormat.allCases where runs("path") {
    let output = LogOutput(format: format, level: .info, fileDescriptor: devNull)
    let loop = EmbeddedEventLoop()
    let buffer = output.makeLoopBuffer(for: loop)
    _ = measure("loop buffer + writer thread, \(format.rawValue), forwarded GET", clock: processCPU) {
        for index in 0..<lines {
            buffer.append(access)
            if index % 64 == 63 { loop.run() }
        }
        loop.run()
        output.flush(timeout: 60)
    }
    output.close(timeout: 60)
    try? loop.syncShutdownGracefully()
}
print("")

// 3. The line the proxy wrote before: swift-log's StreamLogHandler to stderr, with the
// metadata dictionary and interpolations finishExchange built per request.
LoggingSystem.bootstrap { label in StreamLogHandler.standardError(label: label) }
let logger = Logger(label: "cors-proxy")
let elapsed: Int64 = 412_300
if runs("old") {
    oldPath()
}

func oldPath() {
_ = measure("old: swift-log StreamLogHandler, forwarded GET", clock: processCPU) {
    for _ in 0..<lines {
        if logger.logLevel <= .info {
            var metadata: Logger.Metadata = [
                "cors.route": "\(access.route)", "http.method": "\(access.method)",
                "http.target": "\(access.target)", "http.status": "\(access.status)",
                "cors.outcome": "\(access.outcome)", "bytes.in": "\(access.bytesIn)",
                "bytes.out": "\(access.bytesOut)", "duration.ms": "\(Double(elapsed) / 1_000_000)",
            ]
            if let origin = access.origin { metadata["cors.origin"] = "\(origin)" }
            metadata["upstream.ms"] = "\(Double(300_900) / 1_000_000)"
            logger.info("access", metadata: metadata)
        }
    }
}
}
