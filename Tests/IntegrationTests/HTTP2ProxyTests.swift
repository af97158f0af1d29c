import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// HTTP/2 through the built proxy to demo-upstream: many streams on one connection, large
/// bodies both ways, a stream reset by the client or by the upstream without harm to the
/// others, and SIGTERM's GOAWAY.
@Suite(.serialized)
struct HTTP2ProxyTests {
    static let app = "https://app.example.com"

    @Test func twentyConcurrentStreamsShareOneConnection() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: try tlsConf(upstream: upstream.url))
        // Each answer takes 1 s upstream: one after the other they would take 20 s.
        var arguments = ["--http2", "--parallel", "--parallel-max", "20", "-H", "Origin: \(Self.app)"]
        for i in 0..<20 {
            arguments += [
                "-w", "%{http_code} %{http_version} %{num_connects}\\n", "-o", "/dev/null",
                "https://127.0.0.1:\(proxy.port)/api/slow/1000?n=\(i)",
            ]
        }
        let started = Date()
        let result = try Curl.run(arguments)
        let seconds = Date().timeIntervalSince(started)
        let lines = result.writeOut.split(separator: "\n").map(String.init)
        #expect(lines.count == 20, "\(result.writeOut) \(result.stderr)")
        #expect(lines.allSatisfy { $0.hasPrefix("200 2 ") }, "\(lines)")
        let connects = lines.compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }.reduce(0, +)
        #expect(connects == 1, "\(lines)")
        #expect(seconds < 10, "20 streams of 1 s took \(seconds) s")
        #expect(try upstream.receivedTargets().count == 20)
    }

    @Test func eightMiBDownAndUpArriveIntact() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: try tlsConf(upstream: upstream.url))
        let size = 8 << 20
        let down = try Curl.run([
            "--http2", "-w", "%{http_version}", "-H", "Origin: \(Self.app)",
            "https://127.0.0.1:\(proxy.port)/big/bytes/\(size)",
        ])
        #expect(down.status == 200 && down.writeOut == "2", "\(down.stderr)")
        #expect(down.body.count == size)
        #expect(fnv1a64(down.body) == patternHash(size))

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("upload-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        let body = patternBytes(size, from: 7)
        try Data(body).write(to: file)
        let up = try Curl.run([
            "--http2", "-w", "%{http_version}", "-H", "Origin: \(Self.app)", "-H",
            "Content-Type: application/octet-stream", "--data-binary", "@\(file.path)",
            "https://127.0.0.1:\(proxy.port)/big/upload",
        ])
        #expect(up.status == 200 && up.writeOut == "2", "\(up.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(up.body)) as? [String: Any]
        #expect(json?["bytes"] as? Int == size, "\(up.bodyText)")
        #expect(json?["fnv1a64"] as? String == hex16(fnv1a64(body)), "\(up.bodyText)")
    }

    /// Stream 1 downloads and stalls (its window stays shut), stream 3 waits for a slow answer;
    /// resetting stream 1 closes its upstream connection (the demo sees one connection fewer),
    /// and stream 3 completes.
    @Test func aClientResetCancelsItsUpstreamTransferOnly() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: try tlsConf(upstream: upstream.url))
        let report = try H2Raw.run(
            "reset-one", port: proxy.port,
            [
                "--path", "/big/bytes/\(1 << 30)", "--other", "/api/slow/1500", "--upstream-port", "\(upstream.port)",
                "--timeout", "15",
            ])
        #expect(report["upstream_before"] as? Int == 2, "\(report)")
        #expect(report["upstream_after"] as? Int == 1, "\(report)")
        #expect(report.status(1) == 200 && !report.ended(1), "\(report)")
        #expect(report.bytes(1) <= 65_535, "stream 1's window was never opened: \(report)")
        #expect(report.status(3) == 200 && report.ended(3), "\(report)")
        #expect(report.reset(3) == nil && report.goAways.isEmpty, "\(report)")
    }

    @Test func anUpstreamFailureMidBodyResetsOnlyItsStream() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: try tlsConf(upstream: upstream.url))
        let report = try H2Raw.run(
            "request", port: proxy.port,
            ["--request", "GET", "/api/reset-mid-body", "--request", "GET", "/api/slow/500"])
        #expect(report.status(1) == 200, "\(report)")
        #expect(report.reset(1) == H2Error.internalError, "\(report)")
        #expect(report.bytes(1) < 100_000 && !report.ended(1), "\(report)")
        #expect(report.status(3) == 200 && report.ended(3) && report.reset(3) == nil, "\(report)")
        #expect(report.goAways.isEmpty && !report.closed, "\(report)")
    }

    /// SIGTERM: the GOAWAY (NO_ERROR) comes at once, the open stream still gets its whole body,
    /// new connections are refused, and the process exits 0.
    @Test func sigtermSendsGoAwayAndTheOpenStreamFinishes() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: try tlsConf(upstream: upstream.url))
        // The demo sends the head and 500 bytes, then the last 500 after 3 s.
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("drain-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let client = try H2Raw.start(
            "drain", port: proxy.port, ["--live", "--path", "/api/slow-body/3000", "--out", out])
        try client.waitForLine("the response head") { $0.contains(#""type": "headers""#) }
        proxy.process.signal(SIGTERM)
        let goAway = try client.waitForLine("the GOAWAY") { $0.contains(#""type": "goaway""#) }
        #expect(goAway.contains(#""code": 0"#) && goAway.contains(#""last": 1"#), "\(goAway)")
        // The GOAWAY came before the stream's end (the upstream's last 500 bytes are 3 s away).
        #expect(!client.output.contains { $0.contains(#""end": true"#) }, "\(client.output)")

        // The listening socket is closed: a new connection is refused.
        let refused = HTTPClient(port: proxy.port, timeoutSeconds: 2)
        var refusedError: (any Error)?
        do { try refused.connect() } catch { refusedError = error }
        #expect((refusedError as? POSIXError)?.code == .ECONNREFUSED, "\(String(describing: refusedError))")

        #expect(try client.waitForExit() == 0, "\(client.output)")
        let report = try H2Raw.report(
            of: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "", status: 0, what: "h2raw.py drain")
        #expect(report.status(1) == 200 && report.ended(1) && report.bytes(1) == 1000, "\(report)")
        #expect(report.reset(1) == nil && report.goAways == [H2Error.noError], "\(report)")
        #expect(report.closed, "the proxy closes the connection after its last stream")
        #expect(try proxy.process.waitForExit(timeout: 20) == 0)
    }
}
