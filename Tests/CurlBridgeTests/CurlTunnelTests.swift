import CCurl
import CurlBridge
import DemoWebSocket
import Foundation
import HeaderFields
import Logging
import NIOCore
import Testing
import Upstream

/// Runs `body` with a started worker and an in-process WebSocket upstream; stops both afterwards.
func withTunnelWorker(
    maxConnectionsPerHost: Int = 64, maxTotalConnections: Int = 256, maxConnectionIdleSeconds: Int = 50,
    _ body: (CurlWorker, WebSocketUpstream) async throws -> Void
) async throws {
    let upstream = try await WebSocketUpstream.start()
    let worker = CurlWorker(
        logger: Logger(label: "curl-test"), maxConnectionsPerHost: maxConnectionsPerHost,
        maxTotalConnections: maxTotalConnections, maxConnectionIdleSeconds: maxConnectionIdleSeconds)
    try await running(worker, upstreamClosed: upstream.record.allClosed, stop: upstream.stop) {
        try await body(worker, upstream)
    }
}

@Suite(.serialized)
struct CurlTunnelTests {
    @Test func echoRoundTrips() async throws {
        try await withTunnelWorker { worker, upstream in
            let extra = [
                HeaderField("Sec-WebSocket-Protocol", "chat, superchat"),
                HeaderField("Sec-WebSocket-Extensions", "x-test; level=3"), HeaderField("X-Kept", "as sent"),
            ]
            let (_, sentHeaders) = handshake("/ws/echo?tag=echo", extra: extra)
            let client = try await TunnelClient.open(
                worker, tunnelRequest(upstream.url(), path: "/ws/echo?tag=echo", extra: extra))
            try await client.wait(until: { $0.status != nil || $0.terminal != nil })
            let (status, reason, headers) = try await client.run { ($0.status, $0.reason, $0.headers) }
            #expect(status == 101)
            #expect(reason == "Switching Protocols")
            // NIO's 101, with what the endpoint negotiated, in the order written.
            #expect(
                headers.map { $0.name.lowercased() } == [
                    "sec-websocket-protocol", "sec-websocket-extensions", "upgrade", "sec-websocket-accept",
                    "connection",
                ])
            #expect(
                headers.first { $0.name.lowercased() == "sec-websocket-accept" }?.value
                    == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
            #expect(headers.first { $0.name.lowercased() == "sec-websocket-protocol" }?.value == "chat")
            #expect(headers.first { $0.name.lowercased() == "sec-websocket-extensions" }?.value == "x-test; level=3")
            // The handshake reached the upstream as given.
            #expect(upstream.record.requests.map(\.headers) == [sentHeaders])
            #expect(upstream.record.requests.map(\.uri) == ["/ws/echo?tag=echo"])

            let big = patternBuffer(count: 4 << 20)
            try await client.run { client in
                client.send(clientFrame(Frame.text, "hello"))
                client.send(clientFrame(Frame.binary, ByteBuffer(bytes: (0..<1000).map { UInt8($0 % 256) })))
                client.send(clientFrame(Frame.text, "frag", fin: false))
                client.send(clientFrame(Frame.continuation, "men", fin: false))
                client.send(clientFrame(Frame.continuation, "ted", fin: true))
                client.send(clientFrame(Frame.ping, "are you there"))
                client.send(clientFrame(Frame.binary, big))
            }
            try await client.wait(until: { $0.frames.count >= 7 || $0.terminal != nil }, within: .seconds(30))
            let frames = try await client.run { $0.frames }
            try #require(frames.count == 7)
            #expect(frames.map(\.opcode) == [1, 2, 1, 0, 0, 10, 2])
            #expect(frames.map(\.fin) == [true, true, false, false, true, true, true])
            #expect(frames[0].text == "hello")
            #expect(Array(frames[1].payload.readableBytesView) == (0..<1000).map { UInt8($0 % 256) })
            #expect(frames[2...4].map(\.text).joined() == "fragmented")
            #expect(frames[5].text == "are you there")
            #expect(frames[6].payload == big)

            try await client.run { $0.send(clientFrame(Frame.close, closePayload(4000, "done here"))) }
            try await client.wait(until: { $0.terminal != nil })
            let (last, terminal, sent, consumed) = try await client.run {
                ($0.frames.last, $0.terminal, $0.sent, $0.bodyConsumed)
            }
            #expect(last?.opcode == Frame.close)
            #expect(last?.payload.getInteger(at: last?.payload.readerIndex ?? 0, as: UInt16.self) == 4000)
            #expect(
                last.map {
                    String(
                        buffer: $0.payload.getSlice(
                            at: $0.payload.readerIndex + 2, length: $0.payload.readableBytes - 2)!)
                } == "done here")
            if case .end = terminal {
            } else {
                Issue.record("the upstream's close is not .end: \(String(describing: terminal))")
            }
            #expect(consumed == sent)
            let closed = try #require(upstream.record.closeFuture(tag: "echo"))
            try await wait(closed)
        }
    }

    @Test func upstreamClosingEndsTheTunnel() async throws {
        try await withTunnelWorker { worker, upstream in
            let client = try await TunnelClient.open(worker, tunnelRequest(upstream.url(), path: "/ws/close/4001"))
            try await client.wait(until: { !$0.frames.isEmpty || $0.terminal != nil })
            let frame = try #require(try await client.run { $0.frames.first })
            #expect(frame.opcode == Frame.close)
            #expect(frame.payload == closePayload(4001, "bye"))
            try await client.run { $0.send(clientFrame(Frame.close, closePayload(4001, "bye"))) }
            try await client.wait(until: { $0.terminal != nil })
            let terminal = try await client.run { $0.terminal }
            if case .end = terminal {} else { Issue.record("not .end: \(String(describing: terminal))") }
        }
    }

    @Test func answersOtherThan101AreDeframed() async throws {
        try await withTunnelWorker { worker, upstream in
            for path in ["/ws/refuse", "/ws/refuse?chunked=1"] {
                let client = try await TunnelClient.open(worker, tunnelRequest(upstream.url(), path: path))
                try await client.wait(until: { $0.terminal != nil })
                let (status, headers, body, terminal) = try await client.run {
                    ($0.status, $0.headers, String(buffer: $0.body), $0.terminal)
                }
                #expect(status == 403, "\(path)")
                #expect(body == DemoWebSocket.refusalBody, "\(path)")
                if case .end = terminal {} else { Issue.record("\(path): not .end: \(String(describing: terminal))") }
                let framing = headers.filter {
                    ["content-length", "transfer-encoding"].contains($0.name.lowercased())
                }
                if path.hasSuffix("chunked=1") {
                    #expect(framing == [HeaderField("transfer-encoding", "chunked")])
                } else {
                    #expect(framing == [HeaderField("Content-Length", "\(DemoWebSocket.refusalBody.utf8.count)")])
                }
            }
            #expect(upstream.record.requests.map(\.uri) == ["/ws/refuse", "/ws/refuse?chunked=1"])
        }
    }

    @Test(
        arguments: [
            ("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the close", 200, "until the close", true),
            ("HTTP/1.1 204 No Content\r\nX: 1\r\n\r\n", 204, "", true),
            (
                "HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n", 500, "abc",
                true
            ),
            ("HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 500, "", false),
            ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 200, "short", false),
            ("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 200, "", false),
            (
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nfirst bytes",
                101,
                "first bytes", true
            ),
            ("", 0, "", false),
        ] as [(String, Int, String, Bool)])
    func scriptedAnswers(_ script: String, _ status: Int, _ body: String, _ ends: Bool) async throws {
        let upstream = try await ScriptedUpstream.start(script)
        let worker = CurlWorker(logger: Logger(label: "curl-test"))
        worker.start()
        defer { worker.shutdown() }
        let client = try await TunnelClient.open(worker, tunnelRequest(upstream.url(), path: "/x"))
        try await client.wait(until: { $0.terminal != nil })
        let (seenStatus, seenBody, terminal) = try await client.run {
            ($0.status, String(buffer: $0.body), $0.terminal)
        }
        #expect(seenStatus ?? 0 == status)
        #expect(seenBody == body)
        switch terminal {
        case .end?: #expect(ends, "ended")
        case .failed(let error)?:
            #expect(!ends, "\(error)")
            #expect(error.kind == .reset)
        default: Issue.record("no terminal event")
        }
        try await upstream.stop()
    }

    @Test func connectRefused() async throws {
        let port = try await refusedPort()
        let worker = CurlWorker(logger: Logger(label: "curl-test"))
        worker.start()
        defer { worker.shutdown() }
        let client = try await TunnelClient.open(worker, tunnelRequest("http://127.0.0.1:\(port)", path: "/ws/echo"))
        try await client.wait(until: { $0.terminal != nil })
        let terminal = try await client.run { $0.terminal }
        #expect(terminal?.error?.kind == .connect, "\(String(describing: terminal))")
        #expect(terminal?.error?.curlCode == Int32(bitPattern: CURLE_COULDNT_CONNECT.rawValue))
    }

    @Test func cancelClosesTheUpstreamConnection() async throws {
        try await withTunnelWorker { worker, upstream in
            let loop = testGroup.next()
            let client = try await TunnelClient.open(
                worker, tunnelRequest(upstream.url(), path: "/ws/echo?tag=cancel"), on: loop)
            try await client.wait(until: { $0.status != nil })
            try await client.run { client in
                client.send(clientFrame(Frame.text, "last words"))
                client.transfer?.cancel()
            }
            let closed = try #require(upstream.record.closeFuture(tag: "cancel"))
            try await wait(closed)
            // A full round trip through the same worker and loop: anything queued for the tunnel has run.
            let (after, _) = try await exchange(worker, request(upstream.url("/hello")), on: loop)
            #expect(after.bodyString == "hello")
            #expect(try await client.run { ($0.eventsAfterDone, $0.terminal == nil) } == (0, true))
        }
    }

    @Test func idleTunnelTimesOut() async throws {
        try await withTunnelWorker { worker, upstream in
            let started = NIODeadline.now()
            let client = try await TunnelClient.open(
                worker, tunnelRequest(upstream.url(), path: "/ws/idle?tag=idle", idleTimeout: 300))
            try await client.wait(until: { $0.terminal != nil })
            let elapsed = NIODeadline.now() - started
            let (status, terminal) = try await client.run { ($0.status, $0.terminal) }
            #expect(status == 101)
            #expect(terminal?.error?.kind == .timeout, "\(String(describing: terminal))")
            #expect(elapsed >= .milliseconds(290))
            // Loose on purpose: the kind above says the idle timeout fired; this wait runs on the
            // cooperative pool, which a loaded 2-core CI machine can hold up for seconds.
            #expect(elapsed < .seconds(10))
            let closed = try #require(upstream.record.closeFuture(tag: "idle"))
            try await wait(closed)
        }
    }

    /// The upstream pushes 64 MiB; the client takes nothing: the worker stops reading once the
    /// credit is spent (memory stays flat), and everything arrives intact once it takes again.
    @Test(arguments: [true, false])
    func upstreamToClientBackpressure(writable: Bool) async throws {
        try await withTunnelWorker { worker, upstream in
            let total = 64 << 20
            let rssBefore = residentBytes()
            let loop = testGroup.next()
            let client = try await TunnelClient.open(
                worker, tunnelRequest(upstream.url(), path: "/ws/push/\(total)"), on: loop, writable: writable
            ) { client in
                client.consuming = false
                client.keepBody = false
                client.keptFrameLimit = 0
                client.checkPayloadPattern = true
            }
            try await client.wait(until: { ($0.transfer as? CurlTransfer)?.receivePauseCount ?? 0 > 0 })
            let atPause = try await client.run { $0.delivered }
            // Two round trips through the same worker: had it kept reading, those bytes would be here by now.
            for _ in 0..<2 {
                let (hello, _) = try await exchange(worker, request(upstream.url("/hello")), on: loop)
                #expect(hello.bodyString == "hello")
            }
            let (delivered, peak) = try await client.run { ($0.delivered, $0.peakUnconsumed) }
            #expect(delivered == atPause)
            let bound =
                writable ? CurlTransfer.receiveCredit + CurlWorker.receiveBufferSize : CurlWorker.receiveBufferSize
            #expect(peak <= bound, "\(peak) bytes unconsumed")
            #expect(delivered < total / 16)
            let grown = residentBytes() - rssBefore
            #expect(grown < 32 << 20, "RSS grew \(grown >> 20) MiB while 64 MiB waited upstream")

            try await client.run { $0.startConsuming() }
            try await client.wait(until: { $0.payloadBytes >= total || $0.terminal != nil }, within: .seconds(120))
            let (payload, intact, terminal) = try await client.run { ($0.payloadBytes, $0.payloadIntact, $0.terminal) }
            #expect(payload == total)
            #expect(intact)
            #expect(terminal == nil)
            try await client.run { $0.send(clientFrame(Frame.close, closePayload(1000, ""))) }
            try await client.wait(until: { $0.terminal != nil })
        }
    }

    /// A tunnel the client's backpressure paused is not idle, however long it waits; once the
    /// bytes are through and nothing moves, the idle deadline closes it.
    @Test func pausedTunnelIsNotIdle() async throws {
        try await withTunnelWorker { worker, upstream in
            let total = 4 << 20
            let client = try await TunnelClient.open(
                worker, tunnelRequest(upstream.url(), path: "/ws/push/\(total)", idleTimeout: 200)
            ) { client in
                client.consuming = false
                client.keepBody = false
                client.keptFrameLimit = 0
                client.checkPayloadPattern = true
            }
            try await client.wait(until: { ($0.transfer as? CurlTransfer)?.receivePauseCount ?? 0 > 0 })
            // What is under test is time passing: three idle timeouts, paused.
            try await Task.sleep(for: .milliseconds(600))
            let stillOpen = try await client.run { $0.terminal == nil }
            #expect(stillOpen)
            try await client.run { $0.startConsuming() }
            try await client.wait(until: { $0.payloadBytes >= total || $0.terminal != nil })
            let started = NIODeadline.now()
            try await client.wait(until: { $0.terminal != nil })
            let elapsed = NIODeadline.now() - started
            let (payload, intact, terminal) = try await client.run { ($0.payloadBytes, $0.payloadIntact, $0.terminal) }
            #expect(payload == total)
            #expect(intact)
            #expect(terminal?.error?.kind == .timeout, "\(String(describing: terminal))")
            #expect(elapsed < .seconds(10))  // loose: see idleTunnelTimesOut
        }
    }

    /// The client's bytes go out as the upstream takes them; `bodyConsumed` counts them. The echo
    /// upstream reads only as fast as the client takes the echo, which is slowly here.
    @Test func clientToUpstreamBackpressure() async throws {
        try await withTunnelWorker { worker, upstream in
            let total = 8 << 20
            let frameSize = 60_000
            let client = try await TunnelClient.open(worker, tunnelRequest(upstream.url(), path: "/ws/echo")) {
                client in
                client.keepBody = false
                client.keptFrameLimit = 0
                client.checkPayloadPattern = true
                client.consumeDelay = .milliseconds(2)
            }
            try await client.wait(until: { $0.status != nil })
            var offset = 0
            var peakUnsent = 0
            while offset < total {
                // Like the server's read gate: at most 64 KiB sent and not yet consumed.
                let sentOffset = offset
                try await client.wait(until: { $0.sent - $0.bodyConsumed <= 64 * 1024 || $0.terminal != nil })
                let n = min(frameSize, total - offset)
                let unsent = try await client.run { client in
                    client.send(clientFrame(Frame.binary, patternSlice(offset: sentOffset, length: n)))
                    return client.sent - client.bodyConsumed
                }
                peakUnsent = max(peakUnsent, unsent)
                offset += n
            }
            try await client.wait(until: { $0.payloadBytes >= total || $0.terminal != nil }, within: .seconds(120))
            let (payload, intact, sent, consumed) = try await client.run {
                ($0.payloadBytes, $0.payloadIntact, $0.sent, $0.bodyConsumed)
            }
            #expect(payload == total)
            #expect(intact)
            #expect(consumed == sent)
            #expect(peakUnsent <= 64 * 1024 + frameSize + 14)
        }
    }

    /// curl's connection-cache housekeeping (`MAXAGE_CONN`, the per-host and total limits) never
    /// touches a tunnel: it lives in its own cache. With one connection allowed per host, exchanges
    /// to the same upstream still run beside an open tunnel, and the tunnel outlives the max age.
    @Test func tunnelOutlivesConnectionHousekeeping() async throws {
        try await withTunnelWorker(maxConnectionsPerHost: 1, maxTotalConnections: 1, maxConnectionIdleSeconds: 4) {
            worker, upstream in
            let client = try await TunnelClient.open(worker, tunnelRequest(upstream.url(), path: "/ws/echo"))
            try await client.wait(until: { $0.status != nil })
            let other = try await TestUpstream.start()
            let started = NIODeadline.now()
            var exchanges = 0
            // Idle past the max age while exchanges (each one prunes the cache, at most once a second)
            // run to this upstream and another.
            while NIODeadline.now() - started < .milliseconds(5500) {
                let (hello, _) = try await exchange(
                    worker, request(upstream.url("/hello")), options: ExchangeOptions(upperBound: .seconds(5)))
                #expect(hello.bodyString == "hello")
                let (stream, _) = try await exchange(worker, request(other.url("/hello")))
                #expect(stream.bodyString == "hello")
                exchanges += 1
                try await Task.sleep(for: .milliseconds(250))
            }
            // Enough turns that the cache was pruned past the max age several times (a slow
            // machine or a sanitizer manages fewer than the ~20 a quiet one does).
            #expect(exchanges >= 4)
            try await client.run { $0.send(clientFrame(Frame.text, "still here")) }
            try await client.wait(until: { !$0.frames.isEmpty || $0.terminal != nil })
            let (frame, terminal) = try await client.run { ($0.frames.first, $0.terminal) }
            #expect(frame?.text == "still here")
            #expect(terminal == nil)
            try await other.stop()
        }
    }

    /// A tunnel's connection is never reused, whatever the upstream answered: the exchange after
    /// it opens a new one.
    @Test func tunnelConnectionIsNeverReused() async throws {
        try await withTunnelWorker { worker, upstream in
            let refused = try await TunnelClient.open(worker, tunnelRequest(upstream.url(), path: "/hello?tag=tunnel"))
            try await refused.wait(until: { $0.terminal != nil })
            #expect(try await refused.run { ($0.status, String(buffer: $0.body)) } == (200, "hello"))
            let closed = try #require(upstream.record.closeFuture(tag: "tunnel"))
            try await wait(closed)
            let (hello, _) = try await exchange(worker, request(upstream.url("/hello")))
            #expect(hello.bodyString == "hello")
            let echo = try await TunnelClient.open(worker, tunnelRequest(upstream.url(), path: "/ws/echo"))
            try await echo.wait(until: { $0.status != nil })
            try await echo.run { $0.transfer?.cancel() }
            let (again, _) = try await exchange(worker, request(upstream.url("/hello")))
            #expect(again.bodyString == "hello")
            // Tunnel, exchange (kept alive and reused by the last one), tunnel.
            #expect(upstream.record.accepted.load(ordering: .relaxed) == 3)
        }
    }

    /// `endBody` passes the client's end on (a FIN once its bytes are out): NIO's echo closes, `.end`.
    @Test func clientEndIsPassedOn() async throws {
        try await withTunnelWorker { worker, upstream in
            let client = try await TunnelClient.open(worker, tunnelRequest(upstream.url(), path: "/ws/echo"))
            try await client.wait(until: { $0.status != nil })
            try await client.run { client in
                client.send(clientFrame(Frame.text, "bye"))
                client.transfer?.endBody()
            }
            try await client.wait(until: { $0.terminal != nil })
            let (frames, terminal, consumed) = try await client.run { ($0.frames, $0.terminal, $0.bodyConsumed) }
            #expect(frames.map(\.text) == ["bye"])
            if case .end = terminal {} else { Issue.record("not .end: \(String(describing: terminal))") }
            #expect(consumed == 9)
        }
    }

    @Test func fiftyConcurrentTunnelsLeaveNoDescriptor() async throws {
        let upstream = try await WebSocketUpstream.start()
        CurlWorker(logger: Logger(label: "warm-up")).shutdown()
        let before = openFileDescriptors()
        let worker = CurlWorker(logger: Logger(label: "curl-test"))
        worker.start()
        var clients: [TunnelClient] = []
        for index in 0..<50 {
            let client = try await TunnelClient.open(
                worker, tunnelRequest(upstream.url(), path: "/ws/echo"), on: testGroup.next())
            try await client.run { $0.send(clientFrame(Frame.text, "tunnel \(index)")) }
            clients.append(client)
        }
        for (index, client) in clients.enumerated() {
            try await client.wait(until: { !$0.frames.isEmpty || $0.terminal != nil })
            #expect(try await client.run { $0.frames.first?.text } == "tunnel \(index)")
        }
        #expect(upstream.record.accepted.load(ordering: .relaxed) == 50)
        for (index, client) in clients.enumerated() {
            if index % 2 == 0 {
                try await client.run { $0.send(clientFrame(Frame.close, closePayload(1000, ""))) }
                try await client.wait(until: { $0.terminal != nil })
            } else {
                try await client.run { $0.transfer?.cancel() }
            }
        }
        try await wait(upstream.record.allClosed())
        // Closed by the upstream or cancelled: no socket to the upstream is left open here.
        let leaked = openFileDescriptors().filter { _, target in
            socketInodes(connectedToPort: upstream.port).contains { target == "socket:[\($0)]" }
        }
        #expect(leaked.isEmpty, "still open: \(leaked); before: \(before.count) fds")
        worker.shutdown()
        let after = openFileDescriptors()
        let opened = after.keys.filter {
            before[$0] == nil && !(after[$0] ?? "").hasPrefix("socket:") && !(after[$0] ?? "").hasPrefix("pipe:")
                && !(after[$0] ?? "").hasPrefix("anon_inode:")
        }
        #expect(opened.isEmpty, "opened and still open: \(opened.map { "\($0) -> \(after[$0] ?? "")" })")
        try await upstream.stop()
    }

    @Test func poolTunnelsOnTheLoopsWorker() async throws {
        let upstream = try await WebSocketUpstream.start()
        let pool = CurlWorkerPool(logger: Logger(label: "curl-test"), workerCount: 2)
        pool.start()
        for loop in Array(testGroup.makeIterator()) {
            let client = try await TunnelClient.open(pool, tunnelRequest(upstream.url(), path: "/ws/echo"), on: loop)
            try await client.run { $0.send(clientFrame(Frame.text, "pooled")) }
            try await client.wait(until: { !$0.frames.isEmpty || $0.terminal != nil })
            let text = try await client.run { $0.frames.first?.text }
            #expect(text == "pooled")
            try await client.run { $0.transfer?.cancel() }
        }
        pool.shutdown()
        try await wait(upstream.record.allClosed())
        try await upstream.stop()
    }

    @Test func shutdownFailsOpenTunnels() async throws {
        let upstream = try await WebSocketUpstream.start()
        let worker = CurlWorker(logger: Logger(label: "curl-test"))
        worker.start()
        let idle = try await TunnelClient.open(worker, tunnelRequest(upstream.url(), path: "/ws/idle"))
        let paused = try await TunnelClient.open(worker, tunnelRequest(upstream.url(), path: "/ws/push/67108864")) {
            $0.consuming = false
            $0.keepBody = false
        }
        try await idle.wait(until: { $0.status != nil })
        try await paused.wait(until: { ($0.transfer as? CurlTransfer)?.receivePauseCount ?? 0 > 0 })
        worker.shutdown()
        for client in [idle, paused] {
            try await client.wait(until: { $0.terminal != nil })
            let terminal = try await client.run { $0.terminal }
            #expect(terminal?.error?.detail.contains("shutting down") == true, "\(String(describing: terminal))")
        }
        let late = try await TunnelClient.open(worker, tunnelRequest(upstream.url(), path: "/ws/echo"))
        try await late.wait(until: { $0.terminal != nil })
        #expect(try await late.run { $0.terminal?.error?.kind } == .connect)
        try await wait(upstream.record.allClosed())
        try await upstream.stop()
    }
}
