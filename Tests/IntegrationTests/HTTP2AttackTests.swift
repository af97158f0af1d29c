import Foundation
import TestSupport
import Testing

/// HTTP/2 attacks that have hurt real proxies, sent over real TLS to the built proxy by the raw
/// client (Scripts/h2raw.py). Each ends with the proxy alive (a normal request succeeds) and
/// its descriptors back at the baseline taken before the attack.
@Suite(.serialized)
struct HTTP2AttackTests {
    /// A proxy in front of demo-upstream, warmed up, the upstream's request log cleared. Warm:
    /// four connections one after the other, so that every event loop (one per core, taken in
    /// turn) and its curl worker holds its pooled upstream connection in the baseline.
    struct Target {
        let upstream: Upstream
        let proxy: Proxy
        let baseline: Int

        init() throws {
            upstream = try Upstream()
            proxy = try Proxy(conf: try tlsConf(upstream: upstream.url))
            for _ in 0..<4 { try Target.normalRequest(proxy) }
            try upstream.reset()
            baseline = proxy.openDescriptors
        }

        static func normalRequest(_ proxy: Proxy) throws {
            let r = try Curl.run(["--http2", "-w", "%{http_version}", "https://127.0.0.1:\(proxy.port)/api/items"])
            #expect(r.status == 200 && r.writeOut == "2", "a normal request after the attack: \(r.stderr)")
        }

        /// A normal request succeeds and the descriptors settle back to the baseline.
        func survived(_ attack: String) throws {
            try Target.normalRequest(proxy)
            let now = proxy.descriptorsSettle(at: baseline)
            #expect(now <= baseline, "\(attack): \(baseline) descriptors before, \(now) after")
        }
    }

    /// HEADERS and RST_STREAM in one write, 300 times (CVE-2023-44487): past 200 resets the
    /// connection gets GOAWAY ENHANCE_YOUR_CALM, and no reset stream reached the upstream.
    @Test func rapidReset() throws {
        let t = try Target()
        let report = try H2Raw.run("rapid-reset", port: t.proxy.port, ["--count", "300", "--path", "/api/rapid"])
        #expect(report.goAways == [H2Error.enhanceYourCalm], "\(report)")
        #expect(report.closed, "\(report)")
        #expect(try t.upstream.receivedTargets() == [], "a stream reset with its HEADERS starts no upstream request")
        try t.survived("rapid reset")
    }

    /// A header block that never ends: CONTINUATION frames until the proxy stops it.
    @Test func continuationFlood() throws {
        let t = try Target()
        let report = try H2Raw.run("continuation", port: t.proxy.port, ["--count", "100", "--path", "/api/flood"])
        #expect(report.goAways == [H2Error.enhanceYourCalm], "\(report)")
        #expect(report.closed, "\(report)")
        #expect(try t.upstream.receivedTargets() == [])
        try t.survived("CONTINUATION flood")
    }

    /// 5 KiB on the wire that decode to 4 MiB of header fields (one dynamic-table entry
    /// referenced 1,000 times): the header-list bound ends the connection before anything is
    /// forwarded.
    @Test func hpackBomb() throws {
        let t = try Target()
        let report = try H2Raw.run("hpack-bomb", port: t.proxy.port, ["--count", "1000", "--path", "/api/bomb"])
        #expect(!report.goAways.isEmpty, "\(report)")
        #expect(report.closed, "\(report)")
        #expect(report.status(1) == nil, "\(report)")
        #expect(try t.upstream.receivedTargets() == [])
        try t.survived("HPACK bomb")
    }

    /// 150 uploads opened at once on one connection, past the advertised 100: NIOHTTP2 takes
    /// the 101st as a connection error (RFC 9113 5.1.2 allows a stream error; a client that
    /// ignores SETTINGS is not a browser), so GOAWAY PROTOCOL_ERROR, and the upstream requests
    /// of the 100 streams it took are cancelled with the connection.
    @Test func streamFloodBeyondTheLimit() throws {
        let t = try Target()
        let report = try H2Raw.run("stream-flood", port: t.proxy.port, ["--count", "150", "--path", "/api/upload"])
        #expect(report.goAways == [H2Error.protocolError], "\(report)")
        #expect(report.closed, "\(report)")
        #expect(report.resets.values.allSatisfy { $0 == H2Error.refusedStream }, "\(report)")
        let forwarded = try t.upstream.receivedTargets()
        #expect(forwarded.count <= 100 && forwarded.allSatisfy { $0 == "/api/upload" }, "\(forwarded.count)")
        try t.survived("stream flood")
    }

    /// Malformed requests (RFC 9113 8.2, 8.2.2, 8.1.1): the stream is reset with
    /// PROTOCOL_ERROR, nothing is forwarded, and the connection serves the next stream.
    @Test(arguments: ["uppercase", "connection", "transfer-encoding", "content-length"])
    func malformedRequest(_ kind: String) throws {
        let t = try Target()
        let report = try H2Raw.run(
            "malformed", port: t.proxy.port,
            ["--kind", kind, "--path", "/api/malformed", "--other", "/api/items?after"])
        #expect(report.reset(1) == H2Error.protocolError, "\(kind): \(report)")
        #expect(report.status(1) == nil, "\(kind): \(report)")
        #expect(report.status(3) == 200 && report.ended(3), "\(kind): \(report)")
        #expect(try t.upstream.receivedTargets() == ["/api/items?after"], "\(kind)")
        try t.survived("malformed \(kind)")
    }

    /// 20 connections of random bytes and 20 of a ClientHello that stops half-way, at once:
    /// all closed within the handshake timeout, nothing counted for the ones that never spoke TLS.
    @Test func garbageInsteadOfAClientHello() throws {
        let t = try Target()
        var clients: [(HTTPClient, String)] = []
        for i in 0..<40 {
            let client = HTTPClient(port: t.proxy.port, timeoutSeconds: 10)
            let random = i % 2 == 0
            let bytes: [UInt8] =
                random
                ? [0x01] + (0..<1023).map { _ in UInt8.random(in: 0...255) }
                : [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03]
                    + (0..<32).map { _ in UInt8.random(in: 0...255) }
            try client.send(bytes)
            clients.append((client, random ? "random bytes" : "truncated ClientHello"))
        }
        let started = Date()
        for (client, kind) in clients {
            #expect(client.waitForClose(), "\(kind): still open after 10 s")
        }
        #expect(Date().timeIntervalSince(started) < 9)
        #expect(try t.proxy.metric("cors_proxy_tls_handshake_errors_total") == 0)
        try t.survived("garbage")
    }
}
