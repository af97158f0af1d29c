import CurlBridge
import HeaderFields
import NIOCore
import Upstream

struct TestTimeout: Error, CustomStringConvertible {
    var seconds: Int64
    var description: String { "the exchange did not finish within \(seconds) s" }
}

enum Terminal: Sendable {
    case end
    case failed(UpstreamError)
    case cancelled

    var error: UpstreamError? {
        if case .failed(let error) = self { return error }
        return nil
    }
}

/// What a test exchange saw.
struct Outcome: Sendable {
    var status: Int?
    var reason: String?
    var headers: [HeaderField] = []
    var heads = 0
    var bodyBytes = 0
    var body = ByteBuffer()
    var patternIntact = true
    var peakUnconsumed = 0
    var peakUnconsumedUpload = 0
    var uploadedHash = fnvOffset
    var bodyConsumed = 0
    var terminal: Terminal = .cancelled
    var receivePauses = 0
    var bodyWhileUnwritable = 0
    /// From the `startTransfer` call to the first event, in nanoseconds.
    var firstEventNanoseconds: UInt64?

    var bodyString: String { String(buffer: body) }
    func header(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }
}

/// How a test exchange behaves; runs every step on its EventLoop, like the server will.
struct ExchangeOptions: Sendable {
    /// Pattern bytes to upload, sent in `uploadChunk` pieces while under 64 KiB unconsumed.
    var upload: Int? = nil
    var uploadChunk = 8192
    /// Response bytes are `consumed` this long after they arrive (nil: at once).
    var consumeDelay: TimeAmount? = nil
    /// Keep the response body (small responses only).
    var keepBody = true
    /// Check every body byte against the pattern.
    var checkPattern = false
    var cancelAfterBodyBytes: Int? = nil
    /// Start with the client not writable; become writable once the head arrived.
    var startUnwritable = false
    var upperBound: TimeAmount = .seconds(30)
}

/// EventLoop-confined state of one exchange. `@unchecked Sendable`: touched only on `eventLoop`.
final class ExchangeDriver: @unchecked Sendable {
    let eventLoop: any EventLoop
    let options: ExchangeOptions
    let promise: EventLoopPromise<Outcome>
    var transfer: (any UpstreamTransfer)?
    var outcome = Outcome()
    var unconsumed = 0
    var unconsumedUpload = 0
    var uploadSent = 0
    var uploadEnded = false
    var done = false
    var deadline: Scheduled<Void>?
    /// Events delivered after `.end`, `.failed` or our `cancel()`: must stay 0.
    var eventsAfterDone = 0

    init(eventLoop: any EventLoop, options: ExchangeOptions) {
        self.eventLoop = eventLoop
        self.options = options
        self.promise = eventLoop.makePromise()
    }

    var startedAt: UInt64 = 0
    var writable = true

    func start(_ transport: any UpstreamTransport, _ request: TransferRequest) {
        startedAt = NIODeadline.now().uptimeNanoseconds
        transfer = transport.startTransfer(request, on: eventLoop) { event in self.handle(event) }
        if options.startUnwritable {
            writable = false
            transfer?.setClientWritable(false)
        }
        pumpUpload()
        let bound = options.upperBound
        deadline = eventLoop.scheduleTask(in: bound) {
            guard !self.done else { return }
            self.done = true
            self.promise.fail(TestTimeout(seconds: bound.nanoseconds / 1_000_000_000))
        }
    }

    private func finish(_ terminal: Terminal) {
        done = true
        deadline?.cancel()
        outcome.terminal = terminal
        if let curl = transfer as? CurlTransfer { outcome.receivePauses = curl.receivePauseCount }
        promise.succeed(outcome)
    }

    private func handle(_ event: UpstreamEvent) {
        if done {
            eventsAfterDone += 1
            return
        }
        if outcome.firstEventNanoseconds == nil {
            outcome.firstEventNanoseconds = NIODeadline.now().uptimeNanoseconds - startedAt
        }
        switch event {
        case .head(let status, let reason, let headers):
            outcome.heads += 1
            outcome.status = status
            outcome.reason = reason
            outcome.headers = headers
            if !writable {
                // A later turn of the loop: the worker's pause notice may come before or after this.
                eventLoop.execute {
                    self.writable = true
                    self.transfer?.setClientWritable(true)
                }
            }
        case .body(let buffer):
            let n = buffer.readableBytes
            if !writable { outcome.bodyWhileUnwritable += n }
            // Every body's ends are checked (cheap; catches lost or repeated bytes), all bytes on request.
            let base = outcome.bodyBytes
            if n > 0,
                buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) != patternByte(base)
                    || buffer.getInteger(at: buffer.readerIndex + n - 1, as: UInt8.self) != patternByte(base + n - 1)
            {
                outcome.patternIntact = false
            }
            if options.checkPattern {
                buffer.withUnsafeReadableBytes { bytes in
                    let base = outcome.bodyBytes
                    for (i, byte) in bytes.enumerated() where byte != patternByte(base + i) {
                        outcome.patternIntact = false
                        break
                    }
                }
            }
            outcome.bodyBytes += n
            if options.keepBody { outcome.body.writeImmutableBuffer(buffer) }
            unconsumed += n
            outcome.peakUnconsumed = max(outcome.peakUnconsumed, unconsumed)
            if let delay = options.consumeDelay {
                eventLoop.scheduleTask(in: delay) {
                    self.unconsumed -= n
                    self.transfer?.consumed(n)
                }
            } else {
                unconsumed -= n
                transfer?.consumed(n)
            }
            if let limit = options.cancelAfterBodyBytes, outcome.bodyBytes >= limit {
                transfer?.cancel()
                finish(.cancelled)
            }
        case .bodyConsumed(let n):
            outcome.bodyConsumed += n
            unconsumedUpload -= n
            pumpUpload()
        case .end:
            finish(.end)
        case .failed(let error):
            finish(.failed(error))
        }
    }

    private func pumpUpload() {
        guard let total = options.upload, let transfer, !uploadEnded else { return }
        while uploadSent < total && unconsumedUpload < 64 * 1024 {
            let n = min(options.uploadChunk, total - uploadSent)
            let chunk = patternSlice(offset: uploadSent, length: n)
            outcome.uploadedHash = fnv1a(outcome.uploadedHash, chunk)
            transfer.sendBody(chunk)
            uploadSent += n
            unconsumedUpload += n
            outcome.peakUnconsumedUpload = max(outcome.peakUnconsumedUpload, unconsumedUpload)
        }
        if uploadSent == total {
            uploadEnded = true
            transfer.endBody()
        }
    }
}

/// Runs one exchange to its end (or cancel); fails loudly after `options.upperBound`.
@discardableResult
func exchange(
    _ transport: any UpstreamTransport, _ request: TransferRequest,
    on eventLoop: any EventLoop = testGroup.next(), options: ExchangeOptions = ExchangeOptions()
) async throws -> (Outcome, ExchangeDriver) {
    let driver = ExchangeDriver(eventLoop: eventLoop, options: options)
    try await eventLoop.submit { driver.start(transport, request) }.get()
    let outcome = try await driver.promise.futureResult.get()
    return (outcome, driver)
}

func request(
    _ url: String, method: String = "GET", headers: [HeaderField] = [], body: RequestBodyFraming = .none,
    connectTimeout: Int = 2000, idleTimeout: Int = 10_000, tls: UpstreamTLS? = nil
) -> TransferRequest {
    var headers = headers
    if !headers.contains(where: { $0.name.lowercased() == "host" }) {
        headers.insert(HeaderField("Host", "upstream.test"), at: 0)
    }
    return TransferRequest(
        url: url, method: method, headers: headers, body: body, connectTimeoutMilliseconds: connectTimeout,
        idleTimeoutMilliseconds: idleTimeout, tls: tls)
}
