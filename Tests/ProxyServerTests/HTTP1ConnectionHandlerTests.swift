import NIOCore
import NIOEmbedded
import Testing
import Upstream

@testable import ProxyServer

/// `HTTP1ConnectionHandler` + `ExchangeDriver` in-process: an EmbeddedChannel on one side, a
/// fake upstream on the other, the embedded loop's clock for the timers.
struct HTTP1ConnectionHandlerTests {
    private static let origin = "Origin: https://app.example.com\r\n"

    // MARK: Local answers

    @Test func aPreflightIsAnsweredLocallyAndNothingIsForwarded() throws {
        let h = try ConnectionHarness()
        try h.send(
            "OPTIONS /api/items HTTP/1.1\r\nHost: p\r\n\(Self.origin)Access-Control-Request-Method: PUT\r\n\r\n")
        let out = try h.output()
        #expect(out.hasPrefix("HTTP/1.1 204 No Content\r\n"))
        #expect(out.contains("Access-Control-Allow-Origin: https://app.example.com\r\n"))
        #expect(h.upstream.transfers.isEmpty)
        #expect(h.isOpen)
    }

    @Test func aRepeatedPreflightIsServedFromTheCacheByteForByte() throws {
        let h = try ConnectionHarness()
        let preflight =
            "OPTIONS /api/items HTTP/1.1\r\nHost: p\r\n\(Self.origin)Access-Control-Request-Method: PUT\r\n\r\n"
        try h.send(preflight)
        try h.send(preflight)
        let responses = try h.responses()
        #expect(responses.count == 2)
        #expect(responses[0] == responses[1])
    }

    @Test func aDeniedOriginGets403AndTheUpstreamNothing() throws {
        let h = try ConnectionHarness()
        try h.send("GET /api/items HTTP/1.1\r\nHost: p\r\nOrigin: https://evil.example\r\n\r\n")
        let out = try h.output()
        #expect(out.hasPrefix("HTTP/1.1 403 Forbidden\r\n"))
        #expect(!out.contains("Access-Control-Allow-"))
        #expect(h.upstream.transfers.isEmpty)
    }

    // MARK: Pipelining

    @Test func pipelinedRequestsAreAnsweredInOrderOneExchangeAtATime() throws {
        let h = try ConnectionHarness()
        try h.send(
            "GET /api/a HTTP/1.1\r\nHost: p\r\n\r\n"
                + "OPTIONS /api/b HTTP/1.1\r\nHost: p\r\n\(Self.origin)Access-Control-Request-Method: PUT\r\n\r\n"
                + "GET /api/c HTTP/1.1\r\nHost: p\r\n\r\n")
        // Only the first is in flight; the others wait in the buffer, and the socket is not read.
        #expect(h.upstream.transfers.count == 1)
        #expect(try h.output() == "")
        let readsBefore = h.reads.reads
        h.channel.read()
        #expect(h.reads.reads == readsBefore)

        let first = h.upstream.transfers[0]
        #expect(first.request.url.hasSuffix("/api/a"))
        first.head(200, [("Content-Length", "1")])
        first.body("a")
        first.deliver(.end)
        // The preflight is answered from the buffer at once; then /api/c starts.
        #expect(h.upstream.transfers.count == 2)
        let second = h.upstream.transfers[1]
        #expect(second.request.url.hasSuffix("/api/c"))
        second.head(200, [("Content-Length", "1")])
        second.body("c")
        second.deliver(.end)
        let responses = try h.responses()
        #expect(responses.count == 3)
        #expect(responses[0].hasPrefix("HTTP/1.1 200 OK") && responses[0].hasSuffix("\r\n\r\na"))
        #expect(responses[1].hasPrefix("HTTP/1.1 204 No Content"))
        #expect(responses[2].hasPrefix("HTTP/1.1 200 OK") && responses[2].hasSuffix("\r\n\r\nc"))
    }

    // MARK: Request bodies

    @Test func backpressureStopsReadingUntilCurlConsumes() throws {
        let h = try ConnectionHarness()
        try h.send("POST /api/upload HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n")
        let chunk = "10000\r\n" + String(repeating: "x", count: 0x10000) + "\r\n"
        try h.send(chunk)
        let transfer = h.upstream.transfers[0]
        #expect(transfer.body.count == 0x10000)
        let readsBefore = h.reads.reads
        h.channel.read()
        #expect(h.reads.reads == readsBefore, "64 KiB unconsumed: the socket is not read")
        transfer.deliver(.bodyConsumed(0x10000))
        #expect(h.reads.reads == readsBefore + 1, "the pending read is released once curl took the bytes")
    }

    @Test func aChunkedBodyOverTheLimitBeforeTheHeadIs413AndTheRestIsDiscarded() throws {
        let h = try ConnectionHarness()
        try h.send(
            "POST /small/x HTTP/1.1\r\nHost: p\r\n\(Self.origin)Transfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n")
        let transfer = h.upstream.transfers[0]
        try h.send("6\r\nghijkl\r\n")
        #expect(transfer.cancelled)
        let out = try h.output()
        #expect(out.hasPrefix("HTTP/1.1 413 Content Too Large\r\n"))
        #expect(out.contains("Access-Control-Allow-Origin: https://app.example.com\r\n"))
        #expect(out.contains("Connection: close\r\n"))
        // The answer was written; the client's remaining bytes are read and dropped (lingering close).
        #expect(h.reads.halfCloses == 1)
        try h.send(String(repeating: "z", count: 1000))
        #expect(h.isOpen)
        h.advance(by: .seconds(1))
        #expect(!h.isOpen, "quiet for a second: closed")
    }

    @Test func aChunkedBodyOverTheLimitAfterTheHeadCutsTheConnection() throws {
        let h = try ConnectionHarness()
        try h.send("POST /small/x HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n")
        let transfer = h.upstream.transfers[0]
        transfer.head(200, [("Content-Length", "100")])
        try h.send("6\r\nghijkl\r\n")
        #expect(transfer.cancelled)
        #expect(!h.isOpen)
        #expect(try h.output().hasPrefix("HTTP/1.1 200 OK\r\n"))
    }

    @Test func aDeclaredLengthOverTheLimitIsRefusedBeforeAnythingIsForwarded() throws {
        let h = try ConnectionHarness()
        try h.send("POST /small/x HTTP/1.1\r\nHost: p\r\nContent-Length: 11\r\n\r\nabc")
        #expect(h.upstream.transfers.isEmpty)
        #expect(try h.output().hasPrefix("HTTP/1.1 413 Content Too Large\r\n"))
    }

    // MARK: Upstream failures

    @Test func aFailureBeforeTheHeadIs502AndTheConnectionStays() throws {
        let h = try ConnectionHarness()
        try h.send("GET /api/x HTTP/1.1\r\nHost: p\r\n\(Self.origin)\r\n")
        h.upstream.transfers[0].deliver(.failed(UpstreamError(kind: .connect, curlCode: 7, detail: "refused")))
        let out = try h.output()
        #expect(out.hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"))
        #expect(out.contains("Access-Control-Allow-Origin: https://app.example.com\r\n"))
        #expect(out.hasSuffix("502 Bad Gateway: upstream unreachable: refused\n"))
        #expect(h.isOpen)
        // The connection serves the next request.
        try h.send("GET /api/y HTTP/1.1\r\nHost: p\r\n\r\n")
        #expect(h.upstream.transfers.count == 2)
    }

    @Test func aTimeoutBeforeTheHeadIs504() throws {
        let h = try ConnectionHarness()
        try h.send("GET /api/x HTTP/1.1\r\nHost: p\r\n\r\n")
        h.upstream.transfers[0].deliver(.failed(UpstreamError(kind: .timeout, curlCode: 28, detail: "slow")))
        #expect(try h.output().hasPrefix("HTTP/1.1 504 Gateway Timeout\r\n"))
    }

    @Test func aFailureAfterTheHeadClosesTheConnectionMidBody() throws {
        let h = try ConnectionHarness()
        try h.send("GET /api/x HTTP/1.1\r\nHost: p\r\n\r\n")
        let transfer = h.upstream.transfers[0]
        transfer.head(200, [("Content-Length", "10")])
        transfer.body("abc")
        transfer.deliver(.failed(UpstreamError(kind: .reset, curlCode: 56, detail: "reset")))
        #expect(!h.isOpen)
        #expect(try h.output().hasSuffix("\r\n\r\nabc"), "an incomplete response, never a complete-looking one")
    }

    // MARK: Drain

    @Test func drainWhileIdleClosesAtOnce() throws {
        let h = try ConnectionHarness()
        h.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(!h.isOpen)
    }

    @Test func drainInFlightFinishesWithConnectionClose() throws {
        let h = try ConnectionHarness()
        try h.send("GET /api/x HTTP/1.1\r\nHost: p\r\n\r\n")
        h.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(h.isOpen)
        let transfer = h.upstream.transfers[0]
        transfer.head(200, [("Content-Length", "2")])
        transfer.body("ok")
        transfer.deliver(.end)
        let out = try h.output()
        #expect(out.contains("Connection: close\r\n"))
        #expect(out.hasSuffix("\r\n\r\nok"))
        #expect(!h.isOpen)
    }

    // MARK: The client leaving

    @Test func theClientLeavingMidUploadCancelsTheTransfer() throws {
        let h = try ConnectionHarness()
        try h.send("POST /api/up HTTP/1.1\r\nHost: p\r\nContent-Length: 100\r\n\r\nabc")
        let transfer = h.upstream.transfers[0]
        _ = try h.channel.close().wait()
        #expect(transfer.cancelled)
    }

    @Test func theClientLeavingMidDownloadCancelsTheTransfer() throws {
        let h = try ConnectionHarness()
        try h.send("GET /api/big HTTP/1.1\r\nHost: p\r\n\r\n")
        let transfer = h.upstream.transfers[0]
        transfer.head(200, [("Content-Length", "1000")])
        transfer.body("abc")
        _ = try h.channel.close().wait()
        #expect(transfer.cancelled)
        // Events that were already on their way are ignored.
        transfer.body("late")
    }

    // MARK: Timers

    @Test func anIdleConnectionIsClosedAfterSixtySeconds() throws {
        let h = try ConnectionHarness()
        h.advance(by: .seconds(59))
        #expect(h.isOpen)
        h.advance(by: .seconds(1))
        #expect(!h.isOpen)
    }

    @Test func theIdleClockRestartsAfterEachResponse() throws {
        let h = try ConnectionHarness()
        h.advance(by: .seconds(50))
        try h.send("OPTIONS /api/x HTTP/1.1\r\nHost: p\r\n\(Self.origin)Access-Control-Request-Method: PUT\r\n\r\n")
        h.advance(by: .seconds(50))
        #expect(h.isOpen)
        h.advance(by: .seconds(10))
        #expect(!h.isOpen)
    }

    @Test func anIncompleteHeadHasThirtySeconds() throws {
        let h = try ConnectionHarness()
        try h.send("GET /api/x HTTP/1.1\r\nHost:")
        h.advance(by: .seconds(29))
        #expect(h.isOpen)
        h.advance(by: .seconds(1))
        #expect(!h.isOpen)
        #expect(h.upstream.transfers.isEmpty)
    }

    @Test func aStalledRequestBodyGets408AfterSixtySeconds() throws {
        let h = try ConnectionHarness()
        try h.send("POST /api/up HTTP/1.1\r\nHost: p\r\n\(Self.origin)Content-Length: 100\r\n\r\nabc")
        let transfer = h.upstream.transfers[0]
        h.advance(by: .seconds(59))
        #expect(!transfer.cancelled)
        h.advance(by: .seconds(1))
        #expect(transfer.cancelled)
        let out = try h.output()
        #expect(out.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        #expect(out.contains("Access-Control-Allow-Origin: https://app.example.com\r\n"))
        #expect(!h.isOpen)
    }

    // MARK: Malformed input

    @Test func aMalformedHeadIs400WithCORSHeadersAndNothingIsForwarded() throws {
        let h = try ConnectionHarness()
        try h.send("GET /api/x HTTP/1.1\r\nHost: p\r\n\(Self.origin)Content-Length: 1\r\nContent-Length: 2\r\n\r\n")
        let out = try h.output()
        #expect(out.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(out.contains("Access-Control-Allow-Origin: https://app.example.com\r\n"))
        #expect(out.hasSuffix("malformed request: two different Content-Length values\n"))
        #expect(h.upstream.transfers.isEmpty)
        #expect(h.reads.halfCloses == 1)
    }

    @Test func responseFramingReachesTheClient() throws {
        let h = try ConnectionHarness()
        try h.send("GET /api/x HTTP/1.1\r\nHost: p\r\n\(Self.origin)\r\n")
        let transfer = h.upstream.transfers[0]
        transfer.head(422, reason: "Unprocessable Entity", [("Access-Control-Allow-Origin", "*")])
        transfer.body("hello")
        transfer.deliver(.end)
        let out = try h.output()
        #expect(out.hasPrefix("HTTP/1.1 422 Unprocessable Entity\r\n"))
        #expect(out.contains("Transfer-Encoding: chunked\r\n"))
        #expect(out.contains("Vary: Origin\r\n"))
        // The upstream's own CORS header is replaced by exactly one of ours.
        #expect(out.components(separatedBy: "Access-Control-Allow-Origin:").count == 2)
        #expect(out.hasSuffix("5\r\nhello\r\n0\r\n\r\n"))
        #expect(transfer.consumed == 5)
    }
}
