import NIOCore
import NIOEmbedded
import Testing
import Upstream

@testable import ProxyServer

/// WebSocket handshakes and tunnels through `HTTP1ConnectionHandler` and the driver, in-process.
struct WebSocketTunnelTests {
    private static func handshake(path: String = "/api/ws", origin: String? = "https://app.example.com") -> String {
        var text =
            "GET \(path) HTTP/1.1\r\nHost: proxy.example\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
        text += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        text += "Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Extensions: x-test\r\n"
        if let origin { text += "Origin: \(origin)\r\n" }
        return text + "\r\n"
    }

    private static let switching: [(String, String)] = [
        ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ("Sec-WebSocket-Protocol", "chat"), ("Access-Control-Allow-Origin", "*"),
    ]

    /// A harness with an open tunnel.
    private func open() throws -> (ConnectionHarness, FakeUpstream.Transfer) {
        let h = try ConnectionHarness()
        try h.send(Self.handshake())
        let transfer = try #require(h.upstream.transfers.first)
        transfer.head(101, reason: "Switching Protocols", Self.switching)
        return (h, transfer)
    }

    @Test func anAllowedHandshakeIsSentUpstreamWithItsWebSocketHeaders() throws {
        let h = try ConnectionHarness()
        try h.send(Self.handshake())
        let tunnel = try #require(h.upstream.transfers.first?.tunnel)
        let sent = String(buffer: tunnel.handshake)
        #expect(sent.hasPrefix("GET /api/ws HTTP/1.1\r\n"))
        #expect(sent.hasSuffix("\r\n\r\n"))
        for line in [
            "Host: 127.0.0.1:3000", "Upgrade: websocket", "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Protocol: chat, superchat", "Sec-WebSocket-Extensions: x-test",
            "Origin: https://app.example.com", "X-Forwarded-For: 127.0.0.1", "X-Forwarded-Proto: http",
            "X-Forwarded-Host: proxy.example",
        ] {
            #expect(sent.contains("\r\n\(line)\r\n"), "\(line) in \(sent)")
        }
        #expect(sent.components(separatedBy: "Upgrade: websocket").count == 2, "no Upgrade twice")
        #expect(tunnel.url == "http://127.0.0.1:3000/api/ws")
    }

    /// The tunnel connects as an exchange to that upstream does: an https upstream's `ca_file`
    /// (and the rest of its TLS settings) goes with it.
    @Test func aTunnelToAnHTTPSUpstreamCarriesItsTLSSettings() throws {
        let h = try ConnectionHarness(
            conf: ConnectionHarness.conf + """

                upstream secure { url https://127.0.0.1:8443; ca_file /etc/cors-proxy/ca.pem }
                route /secure/ { upstream secure }
                """)
        try h.send(Self.handshake(path: "/secure/ws"))
        let tunnel = try #require(h.upstream.transfers.first?.tunnel)
        #expect(tunnel.url == "https://127.0.0.1:8443/secure/ws")
        #expect(tunnel.tls?.caFile == "/etc/cors-proxy/ca.pem")
        #expect(tunnel.tls?.verify == true)
    }

    @Test func the101ComesBackUnchangedAndBytesPassBothWaysUntouched() throws {
        let (h, transfer) = try open()
        let out = try h.output()
        #expect(out.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
        for (name, value) in Self.switching { #expect(out.contains("\(name): \(value)\r\n")) }
        #expect(!out.contains("Vary"), "the 101 is not rewritten")
        #expect(h.server.metrics.openTunnels == 1)

        try h.send([0x81, 0x85, 1, 2, 3, 4, 0x69, 0x67, 0x6F, 0x68, 0x6E])  // a masked "hello"
        #expect(transfer.body == [0x81, 0x85, 1, 2, 3, 4, 0x69, 0x67, 0x6F, 0x68, 0x6E])
        transfer.deliver(.body(ByteBuffer(bytes: [0x81, 0x05] + Array("hello".utf8))))
        #expect(try h.outputBytes().suffix(11) == Array("\r\n\r\n".utf8) + [0x81, 0x05] + Array("hello".utf8))
        #expect(transfer.consumed == 7)
    }

    @Test func bytesSentRightBehindTheHandshakeGoToTheTunnel() throws {
        let h = try ConnectionHarness()
        try h.send(Self.handshake() + "early")
        let transfer = try #require(h.upstream.transfers.first)
        #expect(transfer.body.isEmpty)
        transfer.head(101, reason: "Switching Protocols", Self.switching)
        #expect(String(decoding: transfer.body, as: UTF8.self) == "early")
    }

    @Test func aDeniedOriginIs403WithVaryAndNothingIsForwarded() throws {
        let h = try ConnectionHarness()
        try h.send(Self.handshake(origin: "https://evil.example"))
        let out = try h.output()
        #expect(out.hasPrefix("HTTP/1.1 403 Forbidden\r\n"))
        #expect(out.contains("Vary: Origin\r\n"))
        #expect(!out.contains("Access-Control-Allow-"))
        #expect(h.upstream.transfers.isEmpty)
    }

    @Test(arguments: ["null", "https://a.example.com, https://b.example.com", "not an origin"])
    func aMalformedOrRepeatedOriginIsDenied(_ origin: String) throws {
        let h = try ConnectionHarness()
        try h.send(Self.handshake(origin: origin))
        #expect(try h.output().hasPrefix("HTTP/1.1 403 Forbidden\r\n"))
        #expect(h.upstream.transfers.isEmpty)
    }

    @Test func noOriginIsForwarded() throws {
        let h = try ConnectionHarness()
        try h.send(Self.handshake(origin: nil))
        #expect(h.upstream.transfers.first?.tunnel != nil)
    }

    @Test func aCORSOffRouteTunnelsWithoutAnOriginCheck() throws {
        let h = try ConnectionHarness()
        try h.send(Self.handshake(path: "/raw/ws", origin: "https://evil.example"))
        #expect(h.upstream.transfers.first?.tunnel != nil)
    }

    @Test func websocketOffIs501WithCORSHeadersAndNothingIsForwarded() throws {
        let h = try ConnectionHarness()
        try h.send(Self.handshake(path: "/nows/ws"))
        let out = try h.output()
        #expect(out.hasPrefix("HTTP/1.1 501 Not Implemented\r\n"))
        #expect(out.contains("Access-Control-Allow-Origin: https://app.example.com\r\n"))
        #expect(h.upstream.transfers.isEmpty)
    }

    @Test func otherUpgradesAre501OnACORSRoute() throws {
        let h = try ConnectionHarness()
        try h.send("GET /api/x HTTP/1.1\r\nHost: p\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
        #expect(try h.output().hasPrefix("HTTP/1.1 501 Not Implemented\r\n"))
        #expect(h.upstream.transfers.isEmpty)
        let post = try ConnectionHarness()
        try post.send(
            "POST /api/x HTTP/1.1\r\nHost: p\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n")
        #expect(
            try post.output().hasPrefix("HTTP/1.1 501 Not Implemented\r\n"), "a non-GET handshake is any other upgrade")
    }

    @Test func aNon101AnswerIsAnOrdinaryResponseAndTheConnectionGoesOn() throws {
        let h = try ConnectionHarness()
        try h.send(Self.handshake())
        let transfer = h.upstream.transfers[0]
        transfer.head(403, reason: "Forbidden", [("Content-Length", "2"), ("Access-Control-Allow-Origin", "*")])
        transfer.body("no")
        transfer.deliver(.end)
        let out = try h.output()
        #expect(out.hasPrefix("HTTP/1.1 403 Forbidden\r\n"))
        #expect(out.contains("Access-Control-Allow-Origin: https://app.example.com\r\n"))
        #expect(out.hasSuffix("\r\n\r\nno"))
        #expect(h.isOpen)
        try h.send("GET /api/next HTTP/1.1\r\nHost: p\r\n\r\n")
        #expect(h.upstream.transfers.count == 2)
        #expect(h.server.metrics.openTunnels == 0)
    }

    @Test func theClientsBytesAreHeldBackAbove64KiBUnconsumed() throws {
        let (h, transfer) = try open()
        try h.send([UInt8](repeating: 0x82, count: 70_000))
        let before = h.reads.reads
        h.channel.read()
        #expect(h.reads.reads == before)
        transfer.deliver(.bodyConsumed(70_000))
        #expect(h.reads.reads == before + 1)
    }

    @Test func theUpstreamClosingClosesTheClientAndViceVersa() throws {
        let (h, transfer) = try open()
        transfer.deliver(.end)
        #expect(!h.isOpen)
        #expect(h.server.metrics.openTunnels == 0)

        let (h2, transfer2) = try open()
        _ = try h2.channel.close().wait()
        #expect(transfer2.cancelled)
        #expect(h2.server.metrics.openTunnels == 0)
    }

    @Test func aTunnelIsNotClosedByTheIdleOrBodyTimers() throws {
        let (h, _) = try open()
        h.advance(by: .seconds(3600))
        #expect(h.isOpen)
    }

    @Test func afterTheDrainTimeTheClientGetsACloseFrame1001AtAFrameBoundary() throws {
        let (h, transfer) = try open()
        h.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(h.isOpen, "a tunnel gets the whole drain time")
        // Half a frame: 10 bytes announced, 4 sent.
        transfer.deliver(.body(ByteBuffer(bytes: [0x82, 0x0A, 1, 2, 3, 4])))
        h.channel.pipeline.fireUserInboundEventTriggered(DrainTimeoutEvent())
        #expect(h.isOpen, "inside a frame: the Close waits for its end")
        // The rest of that frame and the start of the next: only the rest goes out, then the Close.
        transfer.deliver(.body(ByteBuffer(bytes: [5, 6, 7, 8, 9, 10, 0x81, 0x01, 0x21])))
        #expect(try h.outputBytes().suffix(16) == [0x82, 0x0A, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x88, 0x02, 0x03, 0xE9])
        #expect(transfer.cancelled)
        #expect(!h.isOpen)
    }

    @Test func aTunnelStillInsideAFrameASecondAfterTheDrainTimeIsCut() throws {
        let (h, transfer) = try open()
        transfer.deliver(.body(ByteBuffer(bytes: [0x82, 0x7E, 0x10, 0x00, 1, 2])))  // 4 KiB announced
        h.channel.pipeline.fireUserInboundEventTriggered(DrainTimeoutEvent())
        h.advance(by: .milliseconds(999))
        #expect(h.isOpen)
        h.advance(by: .milliseconds(1))
        #expect(!h.isOpen)
        #expect(transfer.cancelled)
        #expect(!(try h.outputBytes().contains(0x88)))
    }

    @Test func atABoundaryTheCloseGoesOutAtOnce() throws {
        let (h, transfer) = try open()
        transfer.deliver(.body(ByteBuffer(bytes: [0x81, 0x02, 0x68, 0x69])))
        h.channel.pipeline.fireUserInboundEventTriggered(DrainTimeoutEvent())
        #expect(try h.outputBytes().suffix(8) == [0x81, 0x02, 0x68, 0x69, 0x88, 0x02, 0x03, 0xE9])
        #expect(!h.isOpen)
    }
}

/// The frame follower, byte by byte.
struct WebSocketFrameBoundaryTests {
    @Test(
        arguments: [
            ([0x81, 0x00], [2]),  // empty text frame
            ([0x82, 0x03, 1, 2, 3, 0x89, 0x00], [5, 7]),  // binary, then a ping
            ([0x82, 0x7E, 0x00, 0x02, 9, 9], [6]),  // 16-bit length
            ([0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0, 1, 7], [11]),  // 64-bit length
            ([0x81, 0x82, 1, 2, 3, 4, 5, 6], [8]),  // masked (as a client sends)
        ] as [([UInt8], [Int])])
    func boundariesAreFoundWhereFramesEnd(_ bytes: [UInt8], _ ends: [Int]) {
        // Fed in every split: one byte at a time.
        var tracker = WebSocketFrameBoundary()
        var found: [Int] = []
        for (i, byte) in bytes.enumerated() {
            _ = tracker.advance(over: ByteBuffer(bytes: [byte]))
            if tracker.isAtBoundary { found.append(i + 1) }
        }
        #expect(found == ends)
        // Whole, from inside the first frame: it stops where that frame ends; at a boundary, at once.
        var whole = WebSocketFrameBoundary()
        #expect(whole.advance(over: ByteBuffer(bytes: bytes), stopAtBoundary: true) == 0)
        _ = whole.advance(over: ByteBuffer(bytes: [bytes[0]]))
        #expect(whole.advance(over: ByteBuffer(bytes: Array(bytes.dropFirst())), stopAtBoundary: true) == ends[0] - 1)
    }
}
