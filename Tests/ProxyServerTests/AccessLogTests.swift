import CORSPolicy
import Foundation
import Logging
import NIOEmbedded
import ProxyLog
import ProxyServer
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The request's one log line: event and level from the outcome, the reason on denials,
/// the preflight fields only on preflights (docs/CONFIG.md, "Log lines").
@Suite struct AccessLogTests {
    static let denial = Denial(.originNotAllowed, "origin https://evil.example is not in allow_origin for route /api/")

    func entry(_ outcome: Outcome, kind: RequestKind = .actual) -> AccessLog.Entry {
        AccessLog.Entry(
            client: "10.1.2.3", method: kind == .preflight ? "OPTIONS" : "GET", target: "/api/x?y=1", route: "/api/",
            kind: kind, status: 403, outcome: outcome, durationNanoseconds: 1_500_000,
            origins: ["https://evil.example"], requestMethod: "PUT", requestHeaders: ["X-A", "x-b"], bytesIn: 3,
            bytesOut: 60)
    }

    /// An output that writes nowhere (the mapping is what is under test).
    func accessLog(level: Logger.Level) -> AccessLog {
        let output = LogOutput(format: .text, level: level, fileDescriptor: -1)
        return AccessLog(output: output, eventLoops: EmbeddedEventLoop())
    }

    @Test(arguments: [
        (Outcome.allowed, AccessRecord.Event.access, Logger.Level.info, "allowed"),
        (.noOrigin, .access, .info, "no_origin"),
        (.sameOrigin, .access, .info, "same_origin"),
        (.passthrough, .access, .info, "passthrough"),
        (.noRoute, .access, .info, "no_route"),
        (.denied(denial), .denial, .warning, "denied"),
        (.reported(denial), .denial, .warning, "reported"),
        (.unenforced(denial), .denial, .info, "reported"),
    ])
    func eventAndLevel(_ outcome: Outcome, _ event: AccessRecord.Event, _ level: Logger.Level, _ label: String) throws {
        let record = try #require(accessLog(level: .trace).record(entry(outcome)))
        #expect(record.event == event)
        #expect(record.level == level)
        #expect(record.outcome == label)
        #expect(record.reason == outcome.denial?.reason.rawValue)
        #expect(record.detail == outcome.denial?.detail)
    }

    @Test func preflightFieldsOnlyOnPreflights() throws {
        let log = accessLog(level: .info)
        let preflight = try #require(log.record(entry(.denied(Self.denial), kind: .preflight)))
        #expect(preflight.kind == "preflight")
        #expect(preflight.requestMethod == "PUT")
        #expect(preflight.requestHeaders == "X-A, x-b")
        let actual = try #require(log.record(entry(.denied(Self.denial))))
        #expect(actual.requestMethod == nil)
        #expect(actual.requestHeaders == nil)
        #expect(actual.origin == "https://evil.example")
        #expect(actual.target == "/api/x?y=1")
        #expect(actual.client == "10.1.2.3")
    }

    @Test func severalOriginLinesAreOneField() throws {
        var twoOrigins = entry(.denied(Denial(.multipleOrigins, "two")))
        twoOrigins.origins = ["https://a.example", "https://b.example"]
        #expect(accessLog(level: .info).record(twoOrigins)?.origin == "https://a.example, https://b.example")
        twoOrigins.origins = []
        #expect(accessLog(level: .info).record(twoOrigins)?.origin == nil)
    }

    /// `--log-level warning`: access lines are not even built; denials still are, except
    /// the `info` ones of `enforce off`.
    @Test func levelDecidesBeforeAnythingIsBuilt() {
        let log = accessLog(level: .warning)
        #expect(!log.isEnabled(for: .allowed))
        #expect(log.record(entry(.allowed)) == nil)
        #expect(log.isEnabled(for: .denied(Self.denial)))
        #expect(log.record(entry(.reported(Self.denial))) != nil)
        #expect(!log.isEnabled(for: .unenforced(Self.denial)))
    }

    /// Through the serving loop's buffer to the output: one line per request.
    @Test func logsIntoTheLoopsBuffer() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("access-\(UUID().uuidString).log").path
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer {
            close(fd)
            unlink(path)
        }
        let loop = EmbeddedEventLoop()
        let output = LogOutput(format: .json, level: .info, fileDescriptor: fd)
        let log = AccessLog(output: output, eventLoops: loop)
        log.log(entry(.allowed), on: loop)
        log.log(entry(.denied(Self.denial), kind: .preflight), on: loop)
        // A loop outside the serving group (a test's) still gets a buffer.
        let other = EmbeddedEventLoop()
        log.log(entry(.noRoute), on: other)
        loop.run()
        other.run()
        #expect(output.close(timeout: 10))
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        let events = lines.compactMap { LogLineParser.parse($0) }.map(\.event)
        #expect(events.sorted() == ["access", "access", "denial"])
    }
}
