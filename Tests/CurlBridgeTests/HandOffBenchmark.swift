import CurlBridge
import Logging
import NIOCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Not a timed test: prints hand-off numbers when `CURLBRIDGE_BENCH=1` (`swift test -c release --filter HandOff`).
@Suite(.serialized, .enabled(if: getenv("CURLBRIDGE_BENCH") != nil))
struct HandOffBenchmark {
    @Test func sequentialSmallGets() async throws {
        let upstream = try await TestUpstream.start()
        let worker = CurlWorker(logger: Logger(label: "bench"))
        worker.start()
        let loop = testGroup.next()
        for _ in 0..<200 { try await exchange(worker, request(upstream.url("/hello")), on: loop) }

        let count = 5000
        var firstEvent: [UInt64] = []
        firstEvent.reserveCapacity(count)
        let started = NIODeadline.now()
        for _ in 0..<count {
            let (outcome, _) = try await exchange(worker, request(upstream.url("/hello")), on: loop)
            firstEvent.append(outcome.firstEventNanoseconds ?? 0)
        }
        let elapsed = NIODeadline.now() - started
        firstEvent.sort()
        func us(_ q: Double) -> Double { Double(firstEvent[Int(Double(count - 1) * q)]) / 1000 }
        print(
            "BENCH sequential GET /hello: \(count) in \(Double(elapsed.nanoseconds) / 1e9) s = "
                + "\(Int(Double(count) / (Double(elapsed.nanoseconds) / 1e9))) req/s; "
                + "startTransfer->head p50 \(us(0.5)) us p90 \(us(0.9)) us p99 \(us(0.99)) us; "
                + "upstream connections \(upstream.record.accepted.load(ordering: .relaxed))")

        // 32 sequential clients at once, spread over both loops, one worker.
        let perClient = 500
        let concurrentStart = NIODeadline.now()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<32 {
                let clientLoop = testGroup.next()
                group.addTask {
                    for _ in 0..<perClient {
                        try await exchange(worker, request(upstream.url("/hello")), on: clientLoop)
                    }
                }
            }
            try await group.waitForAll()
        }
        let concurrentElapsed = Double((NIODeadline.now() - concurrentStart).nanoseconds) / 1e9
        print(
            "BENCH 32 concurrent clients: \(32 * perClient) in \(concurrentElapsed) s = "
                + "\(Int(Double(32 * perClient) / concurrentElapsed)) req/s; "
                + "upstream connections \(upstream.record.accepted.load(ordering: .relaxed))")

        var options = ExchangeOptions()
        options.keepBody = false
        options.upperBound = .seconds(60)
        let size = 256 * 1024 * 1024
        let bulkStart = NIODeadline.now()
        let (bulk, _) = try await exchange(
            worker, request(upstream.url("/stream?bytes=\(size)")), on: loop, options: options)
        let bulkElapsed = Double((NIODeadline.now() - bulkStart).nanoseconds) / 1e9
        print(
            "BENCH 256 MiB response: \(bulkElapsed) s = \(Int(Double(size) / bulkElapsed / 1_048_576)) MiB/s, "
                + "pauses \(bulk.receivePauses), peak unconsumed \(bulk.peakUnconsumed)")
        worker.shutdown()
        try await upstream.stop()
    }
}

/// Not a timed test: prints a small WebSocket echo's round trip through `startTunnel` and over a
/// plain socket to the same upstream, when `CURLBRIDGE_BENCH=1`.
@Suite(.serialized, .enabled(if: getenv("CURLBRIDGE_BENCH") != nil))
struct TunnelEchoBenchmark {
    @Test func echoRoundTrip() async throws {
        let upstream = try await WebSocketUpstream.start()
        let worker = CurlWorker(logger: Logger(label: "bench"))
        worker.start()
        let count = 3000
        let client = try await TunnelClient.open(worker, tunnelRequest(upstream.url(), path: "/ws/echo")) {
            $0.keepBody = false
        }
        try await client.wait(until: { $0.status != nil })
        // Timed on the client's loop: from handing the frame to the tunnel to its echo's arrival.
        let timer = EchoTimer(client: client, count: count + 200, warmUp: 200)
        let tunnel = try await client.eventLoop.flatSubmit { timer.run() }.get()
        try await client.run { $0.transfer?.cancel() }

        // The same frame over a blocking socket to the same upstream, from this thread.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(upstream.port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        func sendAll(_ buffer: ByteBuffer) {
            buffer.withUnsafeReadableBytes { _ = send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        var scratch = [UInt8](repeating: 0, count: 4096)
        func receive(until done: (Int) -> Bool) {
            var total = 0
            while !done(total) {
                let n = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return }
                total += n
            }
        }
        sendAll(handshake("/ws/echo").0)
        var head = 0
        receive { _ in
            head += 1
            return head > 1
        }
        var direct: [UInt64] = []
        for i in 0..<(count + 200) {
            let started = NIODeadline.now()
            sendAll(clientFrame(Frame.text, "0123456789abcdef"))
            receive { $0 >= 18 }
            if i >= 200 { direct.append(UInt64((NIODeadline.now() - started).nanoseconds)) }
        }
        close(fd)
        let sortedTunnel = tunnel.sorted()
        direct.sort()
        func us(_ samples: [UInt64], _ q: Double) -> Double {
            Double(samples[Int(Double(samples.count - 1) * q)]) / 1000
        }
        print(
            "BENCH 16-byte WebSocket echo, \(count) sequential: through startTunnel p50 \(us(sortedTunnel, 0.5)) us "
                + "p90 \(us(sortedTunnel, 0.9)) us p99 \(us(sortedTunnel, 0.99)) us; direct socket p50 \(us(direct, 0.5)) us "
                + "p90 \(us(direct, 0.9)) us p99 \(us(direct, 0.99)) us")
        worker.shutdown()
        try await upstream.stop()
    }
}

/// Sequential echo round trips on the client's loop (`@unchecked Sendable`: touched only there).
private final class EchoTimer: @unchecked Sendable {
    let client: TunnelClient
    let count: Int
    let warmUp: Int
    var samples: [UInt64] = []
    let done: EventLoopPromise<[UInt64]>

    init(client: TunnelClient, count: Int, warmUp: Int) {
        self.client = client
        self.count = count
        self.warmUp = warmUp
        self.done = client.eventLoop.makePromise()
    }

    func run() -> EventLoopFuture<[UInt64]> {
        step(0)
        return done.futureResult
    }

    private func step(_ i: Int) {
        let started = NIODeadline.now()
        client.send(clientFrame(Frame.text, "0123456789abcdef"))
        client.when({ $0.frames.count >= i + 1 }).whenSuccess {
            if i >= self.warmUp { self.samples.append(UInt64((NIODeadline.now() - started).nanoseconds)) }
            if i + 1 < self.count { self.step(i + 1) } else { self.done.succeed(self.samples) }
        }
    }
}
