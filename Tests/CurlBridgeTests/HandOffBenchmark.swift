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
