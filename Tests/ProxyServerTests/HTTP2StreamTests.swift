import NIOCore
import NIOExtras
import NIOHPACK
import NIOHTTP2
import Testing
import Upstream

@testable import ProxyServer

/// HTTP/2 in-process: NIOHTTP2 client ↔ the proxy's HTTP/2 connection, a fake upstream behind it.
/// Each stream is one exchange through the same driver and state machine as HTTP/1.1.
struct HTTP2StreamTests {
    private static let origin = ("origin", "https://app.example.com")

    @Test func aGETIsForwardedWithAuthorityAsHostAndTheResponseComesBackInFrames() throws {
        let h = try HTTP2Harness()
        try h.request(1, path: "/api/items?x=1", headers: [Self.origin, ("cookie", "a=1"), ("cookie", "b=2")])
        let transfer = try #require(h.upstream.transfers.first)
        #expect(transfer.request.url == "http://127.0.0.1:3000/api/items?x=1")
        let sent = transfer.request.headers.map { "\($0.name): \($0.value)" }
        #expect(sent.contains("X-Forwarded-Host: proxy.example"))
        #expect(sent.contains("X-Forwarded-Proto: https"))
        #expect(sent.contains("cookie: a=1; b=2"), "\(sent)")
        #expect(sent.filter { $0.lowercased().hasPrefix("host:") }.map { $0.lowercased() } == ["host: 127.0.0.1:3000"])

        transfer.head(200, [("Content-Type", "application/json"), ("Access-Control-Allow-Origin", "*")])
        transfer.body("{}")
        transfer.deliver(.end)
        try h.interact()
        let r = h.response(1)
        #expect(r.status == 200)
        #expect(r.value("access-control-allow-origin") == "https://app.example.com")
        #expect(r.headers?.filter { $0.name == "access-control-allow-origin" }.count == 1)
        #expect(r.value("vary") == "Origin")
        #expect(r.value("content-type") == "application/json")
        #expect(r.headers?.contains { $0.name != $0.name.lowercased() } == false, "names go out lowercase")
        #expect(r.body == "{}" && r.ended)
    }

    @Test func aPreflightIsAnsweredOnItsStreamAndNothingIsForwarded() throws {
        let h = try HTTP2Harness()
        for stream in [1, 3] {
            try h.request(
                stream, method: "OPTIONS", path: "/api/items",
                headers: [Self.origin, ("access-control-request-method", "PUT")])
            let r = h.response(stream)
            #expect(r.status == 204)
            #expect(r.value("access-control-allow-origin") == "https://app.example.com")
            #expect(r.value("access-control-allow-methods")?.contains("PUT") == true)
            #expect(r.value("vary") == "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
            #expect(r.value("content-length") == nil)
            #expect(r.ended)
        }
        #expect(h.upstream.transfers.isEmpty)
        // The first answer was kept, and the second stream's came from it (the same bytes above).
        #expect(h.context.config.route(for: "/api/items")?.preflightResponses.count == 1)
    }

    @Test func aDeniedOriginGets403() throws {
        let h = try HTTP2Harness()
        try h.request(1, path: "/api/items", headers: [("origin", "https://evil.example")])
        #expect(h.response(1).status == 403)
        #expect(h.upstream.transfers.isEmpty)
    }

    @Test func streamsAreServedConcurrentlyAndAnswerInAnyOrder() throws {
        let h = try HTTP2Harness()
        for stream in [1, 3, 5] { try h.request(stream, path: "/api/s\(stream)") }
        #expect(h.upstream.transfers.count == 3)
        for (index, transfer) in h.upstream.transfers.enumerated().reversed() {
            transfer.head(200, [("Content-Length", "1")])
            transfer.body("\(index)")
            transfer.deliver(.end)
        }
        try h.interact()
        #expect([1, 3, 5].map { h.response($0).body } == ["0", "1", "2"])
    }

    @Test func anUploadStreamsAndItsEndReachesTheUpstream() throws {
        let h = try HTTP2Harness()
        try h.request(1, method: "PUT", path: "/api/items/1", body: "hello", endStream: false)
        let transfer = try #require(h.upstream.transfers.first)
        #expect(transfer.request.body == .chunked)
        #expect(String(decoding: transfer.body, as: UTF8.self) == "hello")
        #expect(!transfer.ended)
        try h.send(.data(.init(data: .byteBuffer(ByteBuffer(string: " world")), endStream: true)), on: 1)
        #expect(String(decoding: transfer.body, as: UTF8.self) == "hello world")
        #expect(transfer.ended)
    }

    @Test func aClientResetCancelsTheUpstreamTransfer() throws {
        let h = try HTTP2Harness()
        try h.request(1, path: "/api/slow")
        let transfer = try #require(h.upstream.transfers.first)
        try h.send(.rstStream(.cancel), on: 1)
        #expect(transfer.cancelled)
    }

    @Test func anUpstreamFailureAfterTheHeadResetsOnlyThatStream() throws {
        let h = try HTTP2Harness()
        try h.request(1, path: "/api/a")
        try h.request(3, path: "/api/b")
        let (a, b) = (h.upstream.transfers[0], h.upstream.transfers[1])
        a.head(200, [("Content-Length", "10")])
        a.body("abc")
        a.deliver(.failed(UpstreamError(kind: .reset, curlCode: 56, detail: "reset")))
        b.head(200, [("Content-Length", "2")])
        b.body("ok")
        b.deliver(.end)
        try h.interact()
        #expect(h.response(1).reset == .internalError)
        #expect(!h.response(1).ended)
        #expect(h.response(3).body == "ok" && h.response(3).ended)
        #expect(h.server.isActive)
    }

    @Test func anUpstreamFailureBeforeTheHeadIs502WithCORSHeaders() throws {
        let h = try HTTP2Harness()
        try h.request(1, path: "/api/a", headers: [Self.origin])
        h.upstream.transfers[0].deliver(.failed(UpstreamError(kind: .connect, curlCode: 7, detail: "refused")))
        try h.interact()
        let r = h.response(1)
        #expect(r.status == 502)
        #expect(r.value("access-control-allow-origin") == "https://app.example.com")
        #expect(r.body == "502 Bad Gateway: upstream unreachable: refused\n")
    }

    @Test func aDeclaredBodyOverTheLimitIs413AndNothingIsForwarded() throws {
        let h = try HTTP2Harness()
        try h.request(
            1, method: "POST", path: "/small/x", headers: [Self.origin, ("content-length", "11")], body: "01234567890")
        #expect(h.upstream.transfers.isEmpty)
        let r = h.response(1)
        #expect(r.status == 413)
        #expect(r.value("access-control-allow-origin") == "https://app.example.com")
    }

    @Test func aHeaderListOver32KiBGets431OnItsStreamAndTheConnectionStays() throws {
        let h = try HTTP2Harness(client: false)
        let raw = try RawHTTP2Client(server: h.server)
        try raw.send(
            RawFrame.request(
                stream: 1, path: "/api/a", headers: [Self.origin, ("x-big", String(repeating: "b", count: 40_000))]))
        #expect(raw.status(1) == 431)
        #expect(h.upstream.transfers.isEmpty)
        try raw.send(RawFrame.request(stream: 3, path: "/api/b"))
        #expect(h.upstream.transfers.count == 1)
        #expect(raw.goAwayCodes.isEmpty)
    }

    @Test func gracefulShutdownSendsGoAwayAndLetsOpenStreamsFinish() throws {
        let h = try HTTP2Harness()
        try h.request(1, path: "/api/slow")
        h.server.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        try h.interact()
        #expect(h.goAways.map(\.errorCode) == [.noError])
        #expect(h.goAways.first?.lastStreamID == 1)
        #expect(h.server.isActive, "the open stream finishes first")
        let transfer = h.upstream.transfers[0]
        transfer.head(200, [("Content-Length", "2")])
        transfer.body("ok")
        transfer.deliver(.end)
        try h.interact()
        #expect(h.response(1).body == "ok" && h.response(1).ended)
        #expect(!h.server.isActive, "the connection closes with its last stream")
    }

    @Test func anIdleConnectionIsClosedWithAGoAway() throws {
        let h = try HTTP2Harness()
        h.server.embeddedEventLoop.advanceTime(by: .seconds(60))
        try h.interact()
        #expect(h.goAways.map(\.errorCode) == [.noError])
        #expect(!h.server.isActive)
    }

    @Test func theSettingsAdvertiseTheStreamAndHeaderListLimits() throws {
        let h = try HTTP2Harness()
        let settings = h.collector.frames.compactMap { frame -> HTTP2Settings? in
            if case .settings(.settings(let s)) = frame.payload { return s }
            return nil
        }.first
        #expect(settings?.contains(HTTP2Setting(parameter: .maxConcurrentStreams, value: 100)) == true)
        #expect(settings?.contains(HTTP2Setting(parameter: .maxHeaderListSize, value: 65536)) == true)
    }
}

/// HTTP/2 attacks that have hurt real proxies, sent as raw frames.
struct HTTP2AbuseTests {
    private static let enhanceYourCalm: UInt32 = 0xB
    private static let protocolError: UInt32 = 0x1
    private static let refusedStream: UInt32 = 0x7

    @Test func rapidResetStartsNoUpstreamRequestAndEndsInGoAwayEnhanceYourCalm() throws {
        let h = try HTTP2Harness(client: false)
        let raw = try RawHTTP2Client(server: h.server)
        var stream: UInt32 = 1
        // HEADERS and RST_STREAM in one write, 250 times (CVE-2023-44487).
        for _ in 0..<250 where h.server.isActive {
            try raw.send(
                RawFrame.request(stream: stream, path: "/api/x")
                    + RawFrame(type: RawFrame.rstStream, flags: 0, stream: stream, payload: [0, 0, 0, 8]).bytes)
            stream += 2
        }
        #expect(h.upstream.transfers.isEmpty, "a stream reset before its request was forwarded starts none")
        #expect(raw.goAwayCodes == [Self.enhanceYourCalm])
        #expect(!h.server.isActive)
    }

    @Test func aResetAfterTheRequestWasForwardedCancelsItsOneTransfer() throws {
        let h = try HTTP2Harness(client: false)
        let raw = try RawHTTP2Client(server: h.server)
        try raw.send(RawFrame.request(stream: 1, path: "/api/x"))
        try raw.send(RawFrame(type: RawFrame.rstStream, flags: 0, stream: 1, payload: [0, 0, 0, 8]).bytes)
        #expect(h.upstream.transfers.count == 1)
        #expect(h.upstream.transfers[0].cancelled)
    }

    @Test func aContinuationFloodEndsTheConnection() throws {
        let h = try HTTP2Harness(client: false)
        let raw = try RawHTTP2Client(server: h.server)
        var bytes = RawFrame(
            type: RawFrame.headers, flags: 0, stream: 1,
            payload: RawFrame.headerBlock([(":method", "GET"), (":scheme", "https"), (":path", "/api/x")])
        ).bytes
        for _ in 0..<50 {
            bytes +=
                RawFrame(
                    type: RawFrame.continuation, flags: 0, stream: 1, payload: RawFrame.headerBlock([("x-a", "b")])
                ).bytes
        }
        try raw.send(bytes)
        #expect(raw.goAwayCodes == [Self.enhanceYourCalm])
        #expect(h.upstream.transfers.isEmpty)
        #expect(!h.server.isActive)
    }

    @Test func anHPACKBombEndsTheConnectionBeforeAnythingIsForwarded() throws {
        let h = try HTTP2Harness(client: false)
        let raw = try RawHTTP2Client(server: h.server)
        // One 4 KB entry added to the dynamic table (literal with incremental indexing; 4,037
        // bytes as HPACK counts an entry, so it fits the default 4,096-byte table: a 4 KiB value
        // would not be added, and index 62 would be a decoding error instead of a bomb), then
        // referenced (index 62, one byte) 1,000 times: 4 MB decoded from 5 KB sent.
        var block: [UInt8] = RawFrame.headerBlock([(":method", "GET"), (":scheme", "https"), (":path", "/api/x")])
        block +=
            [0x40, 0x05] + Array("x-big".utf8) + [0x7F, 0xA1, 0x1E] + Array(repeating: UInt8(ascii: "a"), count: 4000)
        block += Array(repeating: 0xBE, count: 1000)
        try raw.send(
            RawFrame(type: RawFrame.headers, flags: RawFrame.endHeaders | RawFrame.endStream, stream: 1, payload: block)
                .bytes)
        #expect(h.upstream.transfers.isEmpty)
        #expect(!raw.goAwayCodes.isEmpty)
        #expect(!h.server.isActive)
    }

    @Test func streamsBeyondTheConcurrencyLimitAreRefused() throws {
        let h = try HTTP2Harness(client: false)
        let raw = try RawHTTP2Client(server: h.server)
        var bytes: [UInt8] = []
        for i in 0..<101 {
            bytes += RawFrame.request(stream: UInt32(2 * i + 1), method: "POST", path: "/api/up", endStream: false)
        }
        try raw.send(bytes)
        #expect(h.upstream.transfers.count == 100)
        #expect(raw.reset(201) == Self.refusedStream || raw.goAwayCodes == [Self.protocolError])
    }

    @Test(arguments: [
        ("uppercase name", [("X-Upper", "1")]),
        ("connection-specific header", [("connection", "keep-alive")]),
        ("transfer-encoding", [("transfer-encoding", "chunked")]),
    ])
    func aMalformedRequestIsResetWithProtocolErrorAndNothingIsForwarded(
        _ name: String, _ headers: [(String, String)]
    ) throws {
        let h = try HTTP2Harness(client: false)
        let raw = try RawHTTP2Client(server: h.server)
        try raw.send(RawFrame.request(stream: 1, path: "/api/x", headers: headers))
        #expect(raw.reset(1) == Self.protocolError, "\(name)")
        #expect(h.upstream.transfers.isEmpty, "\(name)")
    }

    @Test func aContentLengthThatDisagreesWithTheDataResetsTheStream() throws {
        let h = try HTTP2Harness(client: false)
        let raw = try RawHTTP2Client(server: h.server)
        try raw.send(
            RawFrame.request(
                stream: 1, method: "POST", path: "/api/x", headers: [("content-length", "10")], endStream: false)
                + RawFrame(type: RawFrame.data, flags: RawFrame.endStream, stream: 1, payload: Array("abc".utf8)).bytes)
        #expect(raw.reset(1) == Self.protocolError)
        #expect(h.upstream.transfers.allSatisfy { $0.cancelled || !$0.ended })
    }
}
