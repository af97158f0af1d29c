import CCurl
import HeaderFields
import NIOCore
import Synchronization
import Upstream

/// What the worker hands to the EventLoop for one transfer, in order.
enum PendingEvent: Sendable {
    case event(UpstreamEvent)
    /// The write callback paused receiving (credit spent or client not writable).
    case receivePaused
    /// Request body buffers curl has copied out. They are released on the EventLoop: NIO
    /// may reuse a receive buffer once it is uniquely referenced again, and a release on the
    /// worker thread would order that reuse only through the reference count, which
    /// ThreadSanitizer (and a weakly ordered CPU) does not treat as a fence.
    case release([ByteBuffer])
}

/// One upstream exchange run by a `CurlWorker`.
///
/// `@unchecked Sendable`: the state is split by owner, never shared without a fence.
/// - `let`s are immutable; `outstanding` and `clientWritable` are atomics, written on
///   the EventLoop and read by the worker's write callback.
/// - `loop*` state and `receivePauseCount` are touched only on `eventLoop` (the
///   `UpstreamTransfer` methods are called there, `deliver` runs there).
/// - Everything under "worker thread" is touched only by the worker thread (commands,
///   curl callbacks); the command inbox lock orders the hand-over of each command.
package final class CurlTransfer: UpstreamTransfer, @unchecked Sendable {
    /// Response bytes the EventLoop may hold unconsumed before the worker pauses receiving.
    /// Large enough that a fast client keeps a download flowing with a pause/resume round
    /// trip every few hundred KiB, not every 32 KiB; the per-transfer bound is this plus
    /// one curl buffer (`CurlWorker.receiveBufferSize`).
    package static let receiveCredit = 256 * 1024
    /// Receiving resumes once unconsumed bytes drop to this (hysteresis against ping-pong).
    static let resumeThreshold = receiveCredit / 2

    package let id: UInt64
    let request: TransferRequest
    let eventLoop: any EventLoop
    let handler: @Sendable (UpstreamEvent) -> Void
    let worker: CurlWorker

    // Shared, atomic.
    /// Response bytes handed to the EventLoop and not yet `consumed`.
    let outstanding = Atomic<Int>(0)
    let clientWritable = Atomic<Bool>(true)

    // EventLoop only.
    private var loopStopped = false
    private var loopResumeWanted = false
    /// How often the worker paused receiving (read on the EventLoop; for tests and metrics).
    package private(set) var receivePauseCount = 0

    // Worker thread only.
    var easy: EasyHandle?
    var headerList: UnsafeMutablePointer<curl_slist>?
    var inMulti = false
    var head = ResponseHeadParser()
    var headDelivered = false
    /// The request has no upload (no body, or HEAD): body bytes sent anyway are dropped.
    var discardsRequestBody = false
    var requestQueue = CircularBuffer<ByteBuffer>()
    /// Consumed request buffers waiting to go back to the EventLoop (see `PendingEvent.release`).
    var spentRequestBuffers: [ByteBuffer] = []
    var requestEnded = false
    var readPaused = false
    var receivePaused = false
    var lastActivityNanoseconds: UInt64 = 0
    let idleTimeoutNanoseconds: UInt64?
    var pending: [PendingEvent] = []
    var bodyAccumulator: ByteBuffer?
    var consumedAccumulator = 0
    var isDirty = false

    init(
        id: UInt64, request: TransferRequest, eventLoop: any EventLoop,
        handler: @escaping @Sendable (UpstreamEvent) -> Void, worker: CurlWorker
    ) {
        self.id = id
        self.request = request
        self.eventLoop = eventLoop
        self.handler = handler
        self.worker = worker
        self.idleTimeoutNanoseconds =
            request.idleTimeoutMilliseconds > 0 ? UInt64(request.idleTimeoutMilliseconds) * 1_000_000 : nil
    }

    // MARK: UpstreamTransfer (EventLoop)

    package func sendBody(_ buffer: ByteBuffer) {
        guard !loopStopped else { return }
        worker.post(.requestBody(self, buffer))
    }

    package func endBody() {
        guard !loopStopped else { return }
        worker.post(.requestEnd(self))
    }

    package func consumed(_ bytes: Int) {
        outstanding.subtract(bytes, ordering: .relaxed)
        resumeIfWanted()
    }

    package func setClientWritable(_ writable: Bool) {
        clientWritable.store(writable, ordering: .relaxed)
        if writable { resumeIfWanted() }
    }

    package func cancel() {
        guard !loopStopped else { return }
        loopStopped = true
        worker.post(.cancel(self))
    }

    /// Runs one worker turn's events on the EventLoop.
    func deliver(_ batch: [PendingEvent]) {
        for item in batch {
            if loopStopped { return }
            switch item {
            case .release:
                break  // dropped here, on the EventLoop, with the batch
            case .receivePaused:
                receivePauseCount += 1
                loopResumeWanted = true
                resumeIfWanted()
            case .event(let event):
                switch event {
                case .end, .failed: loopStopped = true
                case .head, .body, .bodyConsumed: break
                }
                handler(event)
            }
        }
    }

    /// Both checks run on the EventLoop, after the pause notice, so no resume is lost.
    private func resumeIfWanted() {
        guard loopResumeWanted, !loopStopped,
            outstanding.load(ordering: .relaxed) <= Self.resumeThreshold,
            clientWritable.load(ordering: .relaxed)
        else { return }
        loopResumeWanted = false
        worker.post(.resumeReceive(self))
    }

    // MARK: Worker thread

    func appendBody(_ bytes: UnsafeRawBufferPointer, allocator: ByteBufferAllocator) {
        // Taken out first so the buffer stays uniquely referenced: the write appends in place.
        // A full buffer becomes its own event rather than growing past a pool slab.
        if let full = bodyAccumulator, full.writableBytes < bytes.count {
            bodyAccumulator = nil
            appendPending(.event(.body(full)))
        }
        // Sized by the first chunk: a small response costs no 16 KiB buffer; a download's
        // chunk (one curl read) takes a pool slab.
        var body = bodyAccumulator.take() ?? allocator.buffer(capacity: bytes.count)
        body.writeBytes(bytes)
        bodyAccumulator = body
    }

    /// Moves coalesced body bytes and consumed counts into `pending`, keeping order with later events.
    func flushAccumulators() {
        if !spentRequestBuffers.isEmpty {
            appendPending(.release(spentRequestBuffers))
            spentRequestBuffers.removeAll()
        }
        if consumedAccumulator > 0 {
            appendPending(.event(.bodyConsumed(consumedAccumulator)))
            consumedAccumulator = 0
        }
        if let body = bodyAccumulator {
            bodyAccumulator = nil
            appendPending(.event(.body(body)))
        }
    }

    func append(_ item: PendingEvent) {
        flushAccumulators()
        appendPending(item)
    }

    /// A small exchange's batch (head, body, end) takes one allocation, not three (1, 2, 4).
    private func appendPending(_ item: PendingEvent) {
        if pending.capacity == 0 { pending.reserveCapacity(4) }
        pending.append(item)
    }
}
