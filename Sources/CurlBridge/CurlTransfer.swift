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

/// One upstream exchange or WebSocket tunnel run by a `CurlWorker`.
///
/// Its state is split by owner into three types, so which thread may touch a field is
/// written in its type, not in a comment:
/// - `Flow`: the only state both threads touch, atomics only (credit and writability,
///   written on the EventLoop, read by the worker's write callback);
/// - `LoopSide`: touched only on `eventLoop` (the `UpstreamTransfer` methods, `deliver`);
/// - `WorkerSide`: touched only by the worker thread (commands, curl callbacks); the
///   command inbox lock orders the hand-over of each command.
///
/// `@unchecked Sendable` because of that split: the compiler cannot see that `onLoop`
/// and `onWorker` are confined, the types say it to the reader.
package final class CurlTransfer: UpstreamTransfer, @unchecked Sendable {
    /// Response bytes the EventLoop may hold unconsumed before the worker pauses receiving.
    /// Large enough that a fast client keeps a download flowing with a pause/resume round
    /// trip every few hundred KiB, not every 32 KiB; the per-transfer bound is this plus
    /// one curl buffer (`CurlWorker.receiveBufferSize`).
    package static let receiveCredit = 256 * 1024
    /// Receiving resumes once unconsumed bytes drop to this (hysteresis against ping-pong).
    static let resumeThreshold = receiveCredit / 2

    /// Receiving must stop: the credit is spent or the client cannot take more (worker thread;
    /// the same rule for response bodies and tunnels).
    var receiveCreditSpent: Bool {
        flow.outstanding.load(ordering: .relaxed) >= Self.receiveCredit
            || !flow.clientWritable.load(ordering: .relaxed)
    }

    /// Shared by the EventLoop and the worker thread: atomics only.
    final class Flow: Sendable {
        /// Response bytes handed to the EventLoop and not yet `consumed`.
        let outstanding = Atomic<Int>(0)
        let clientWritable = Atomic<Bool>(true)
    }

    /// The EventLoop's view of the exchange.
    struct LoopSide {
        /// `cancel`, `end` or `failed` happened: nothing more is delivered or posted.
        var stopped = false
        /// The worker paused receiving and waits for a `resumeReceive`.
        var resumeWanted = false
        /// How often the worker paused receiving (for tests and metrics).
        var receivePauseCount = 0
    }

    /// The worker thread's view of the exchange: curl's handle and both directions' queues.
    struct WorkerSide {
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
        /// Events of this worker turn, in order, not yet handed to the EventLoop.
        var pending: [PendingEvent] = []
        /// Response bytes of this turn, coalesced into one buffer.
        var bodyAccumulator: ByteBuffer?
        /// Request bytes curl took this turn.
        var consumedAccumulator = 0
        /// In the worker's list of transfers with events to flush this turn.
        var isDirty = false
        /// A tunnel's connection, phase and head (nil for an exchange). A tunnel uses the
        /// fields above as an exchange does: `requestQueue` for the client's bytes,
        /// `receivePaused` and the accumulators for the upstream's.
        var tunnel: TunnelState?
    }

    /// What the transfer runs.
    enum Work: Sendable {
        /// An HTTP exchange curl runs whole.
        case exchange(TransferRequest)
        /// A WebSocket tunnel: curl connects, the worker does the rest (`CurlWorker+Tunnel.swift`).
        case tunnel(TunnelRequest)
    }

    package let id: UInt64
    /// The request's `idleTimeoutMilliseconds` (0: none).
    let idleTimeoutMilliseconds: Int
    let eventLoop: any EventLoop
    let handler: @Sendable (UpstreamEvent) -> Void
    let worker: CurlWorker
    let idleTimeoutNanoseconds: UInt64?
    let flow = Flow()
    private var onLoop = LoopSide()
    var onWorker = WorkerSide()

    /// How often the worker paused receiving (read on the EventLoop; for tests and metrics).
    package var receivePauseCount: Int { onLoop.receivePauseCount }

    init(
        id: UInt64, idleTimeoutMilliseconds: Int, eventLoop: any EventLoop,
        handler: @escaping @Sendable (UpstreamEvent) -> Void, worker: CurlWorker
    ) {
        self.id = id
        self.idleTimeoutMilliseconds = idleTimeoutMilliseconds
        self.eventLoop = eventLoop
        self.handler = handler
        self.worker = worker
        self.idleTimeoutNanoseconds =
            idleTimeoutMilliseconds > 0 ? UInt64(idleTimeoutMilliseconds) * 1_000_000 : nil
    }

    // MARK: UpstreamTransfer (EventLoop)

    package func sendBody(_ buffer: ByteBuffer) {
        guard !onLoop.stopped else { return }
        worker.post(.requestBody(self, buffer))
    }

    package func endBody() {
        guard !onLoop.stopped else { return }
        worker.post(.requestEnd(self))
    }

    package func consumed(_ bytes: Int) {
        flow.outstanding.subtract(bytes, ordering: .relaxed)
        resumeIfWanted()
    }

    package func setClientWritable(_ writable: Bool) {
        flow.clientWritable.store(writable, ordering: .relaxed)
        if writable { resumeIfWanted() }
    }

    package func cancel() {
        guard !onLoop.stopped else { return }
        onLoop.stopped = true
        worker.post(.cancel(self))
    }

    /// Runs one worker turn's events on the EventLoop.
    func deliver(_ batch: [PendingEvent]) {
        for item in batch {
            if onLoop.stopped { return }
            switch item {
            case .release:
                break  // dropped here, on the EventLoop, with the batch
            case .receivePaused:
                onLoop.receivePauseCount += 1
                onLoop.resumeWanted = true
                resumeIfWanted()
            case .event(let event):
                switch event {
                case .end, .failed: onLoop.stopped = true
                case .head, .body, .bodyConsumed: break
                }
                handler(event)
            }
        }
    }

    /// Both checks run on the EventLoop, after the pause notice, so no resume is lost.
    private func resumeIfWanted() {
        guard onLoop.resumeWanted, !onLoop.stopped,
            flow.outstanding.load(ordering: .relaxed) <= Self.resumeThreshold,
            flow.clientWritable.load(ordering: .relaxed)
        else { return }
        onLoop.resumeWanted = false
        worker.post(.resumeReceive(self))
    }

    // MARK: Worker thread

    func appendBody(_ bytes: UnsafeRawBufferPointer, allocator: ByteBufferAllocator) {
        // Taken out first so the buffer stays uniquely referenced: the write appends in place.
        // A full buffer becomes its own event rather than growing past a pool slab.
        if let full = onWorker.bodyAccumulator, full.writableBytes < bytes.count {
            onWorker.bodyAccumulator = nil
            appendPending(.event(.body(full)))
        }
        // Sized by the first chunk: a small response costs no 16 KiB buffer; a download's
        // chunk (one curl read) takes a pool slab.
        var body = onWorker.bodyAccumulator.take() ?? allocator.buffer(capacity: bytes.count)
        body.writeBytes(bytes)
        onWorker.bodyAccumulator = body
    }

    /// Moves coalesced body bytes and consumed counts into `onWorker.pending`, keeping order with later events.
    func flushAccumulators() {
        if !onWorker.spentRequestBuffers.isEmpty {
            appendPending(.release(onWorker.spentRequestBuffers))
            onWorker.spentRequestBuffers.removeAll()
        }
        if onWorker.consumedAccumulator > 0 {
            appendPending(.event(.bodyConsumed(onWorker.consumedAccumulator)))
            onWorker.consumedAccumulator = 0
        }
        if let body = onWorker.bodyAccumulator {
            onWorker.bodyAccumulator = nil
            appendPending(.event(.body(body)))
        }
    }

    func append(_ item: PendingEvent) {
        flushAccumulators()
        appendPending(item)
    }

    /// A small exchange's batch (head, body, end) takes one allocation, not three (1, 2, 4).
    private func appendPending(_ item: PendingEvent) {
        if onWorker.pending.capacity == 0 { onWorker.pending.reserveCapacity(4) }
        onWorker.pending.append(item)
    }
}
