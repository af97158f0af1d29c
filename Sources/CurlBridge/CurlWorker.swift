import CCurl
import HeaderFields
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Synchronization
import Upstream

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One thread that owns one `CURLM` and runs every transfer started on it.
///
/// Other threads only append commands to the inbox and wake the worker (an eventfd
/// on Linux, `curl_multi_wakeup` elsewhere); only the worker thread calls curl.
/// On Linux the worker waits in `epoll_wait` (`CurlSocketPoller`) and drives curl with
/// `curl_multi_socket_action`, as curl's `ephiperfifo.c` does; elsewhere with
/// `curl_multi_perform` + `curl_multi_poll`. Events reach each
/// transfer's EventLoop batched: one `execute` per EventLoop per worker turn, carrying
/// each of its dirty transfers' events in order.
///
/// `@unchecked Sendable`: `inbox`, `lifecycle` (locked boxes) and the atomics are shared;
/// every other `var` is confined to the worker thread (before `start()` and after
/// the thread is joined, to the one thread running `shutdown()`/`deinit`).
package final class CurlWorker: UpstreamTransport, @unchecked Sendable {
    enum Command: Sendable {
        /// The work goes with the command, not the transfer: read once, at the start, it is not
        /// kept for the transfer's life (a tunnel's handshake would live as long as the tunnel).
        case start(CurlTransfer, CurlTransfer.Work)
        case requestBody(CurlTransfer, ByteBuffer)
        case requestEnd(CurlTransfer)
        case resumeReceive(CurlTransfer)
        case cancel(CurlTransfer)
        case shutdown
    }

    private struct Inbox {
        var commands: [Command] = []
        /// Set once by the stopping worker; later commands are refused.
        var closed = false
    }

    private enum Lifecycle {
        case initial
        case running(pthread_t)
        case stopped
    }

    private enum PostOutcome {
        case queued, wake, refused
    }

    /// `CURLOPT_BUFFERSIZE`: curl's receive buffer, allocated once per handle (handles are
    /// reused). One read of a download fills up to this (curl's default is 16 KiB); it is
    /// the receive pool's largest class, so a chunk always fits a pooled block.
    package static let receiveBufferSize = 1 << ReceiveBufferPool.largestClassShift
    /// Longest wait: the idle-deadline check runs at least this often.
    private static let maxPollMilliseconds: UInt64 = 1000

    private let logger: Logger
    /// `logger` is a `let`, so its level is fixed: checked once, not per transfer (reading
    /// `logLevel` copies the handler existential).
    private let traceEnabled: Bool
    let multi: UnsafeMutableRawPointer?
    #if os(Linux)
        /// The worker's epoll set and wakeup eventfd (nil only with `multi`).
        let poller: CurlSocketPoller?
    #endif
    // NIOLockedValueBox (a pthread mutex) rather than Synchronization.Mutex: ThreadSanitizer
    // on Linux does not see Mutex's futex hand-off and reports races on data it guards
    // (scripts/tsan-mutex-false-positive.swift); with a pthread mutex TSan runs stay clean.
    private let inbox = NIOLockedValueBox(Inbox())
    /// Posters between deciding to wake and finishing the wakeup; the worker waits for 0 before cleanup.
    private let wakersInFlight = Atomic<Int>(0)
    private let lifecycle = NIOLockedValueBox(Lifecycle.initial)
    private let nextTransferID = Atomic<UInt64>(1)

    // Worker thread only.
    private var transfers: [UInt64: CurlTransfer] = [:]
    var handles: EasyHandlePool
    /// Open tunnels by their socket (after curl connected them), for the poller's readiness.
    var tunnelsByFD: [Int32: CurlTransfer] = [:]
    /// Where a tunnel's `curl_easy_recv` reads to (`receiveBufferSize` bytes, allocated on first use).
    var tunnelReadBuffer: UnsafeMutableRawBufferPointer?
    private var dirty: [CurlTransfer] = []
    private(set) var turnNow: UInt64 = 0
    private var nextIdleCheck: UInt64 = .max
    /// curl's timer (`CURLMOPT_TIMERFUNCTION`): when to call `socket_action(CURL_SOCKET_TIMEOUT)`.
    private var curlTimerDeadline: UInt64 = .max
    /// When to hand freed heap memory back to the kernel (`trimWhenIdle`): `idleTrimDelay` after
    /// the last transfer ended, if one ran since the last trim.
    private var trimDeadline: UInt64 = .max
    private var ranSinceTrim = false
    private let idleTrims = Atomic<Int>(0)
    /// How many times the worker gave memory back after a burst (any thread; tests).
    package var idleTrimCount: Int { idleTrims.load(ordering: .relaxed) }
    static let idleTrimDelayNanoseconds: UInt64 = 1_000_000_000
    private(set) var stopping = false
    private var cleanedUp = false
    let allocator = ReceiveBufferPool.allocator

    /// Creates the worker (its thread starts with `start()`); limits apply to this worker's connection cache.
    /// `maxConnectionIdleSeconds` (`CURLOPT_MAXAGE_CONN`) must stay under the upstreams' keep-alive timeout.
    package init(
        logger: Logger, maxConnectionsPerHost: Int = 1024, maxTotalConnections: Int = 1024,
        maxConnectionIdleSeconds: Int = 50
    ) {
        self.logger = logger
        self.traceEnabled = logger.logLevel <= .trace
        _ = CurlGlobal.initialised
        // The thread does not exist yet, so this thread is the multi's only user here.
        var multi = curl_multi_init()
        #if os(Linux)
            let poller = CurlSocketPoller()
            if poller == nil, let created = multi {
                curl_multi_cleanup(created)
                multi = nil
            }
            self.poller = poller
            let socketContext = poller.map { UnsafeMutableRawPointer(Unmanaged.passUnretained($0).toOpaque()) }
        #else
            let socketContext: UnsafeMutableRawPointer? = nil
        #endif
        self.multi = multi
        self.handles = EasyHandlePool(
            maxConnectionIdleSeconds: maxConnectionIdleSeconds, receiveBufferSize: Self.receiveBufferSize,
            socketContext: socketContext)
        if let multi {
            #if os(Linux)
                if let poller {
                    ccurl_multi_setopt_socket_fn(multi, CURLMOPT_SOCKETFUNCTION, curlSocketCallback)
                    ccurl_multi_setopt_ptr(
                        multi, MultiPointerOption.socketData.raw, Unmanaged.passUnretained(poller).toOpaque())
                }
                ccurl_multi_setopt_timer_fn(multi, CURLMOPT_TIMERFUNCTION, curlTimerCallback)
                // Unretained: the multi is cleaned up before the worker goes away.
                ccurl_multi_setopt_ptr(
                    multi, MultiPointerOption.timerData.raw, Unmanaged.passUnretained(self).toOpaque())
            #endif
            ccurl_multi_setopt_long(multi, MultiLongOption.maxConnects.raw, max(1, maxTotalConnections))
            ccurl_multi_setopt_long(multi, MultiLongOption.maxTotalConnections.raw, max(1, maxTotalConnections))
            ccurl_multi_setopt_long(multi, MultiLongOption.maxHostConnections.raw, max(1, maxConnectionsPerHost))
        } else {
            logger.error("curl_multi_init (or epoll/eventfd) failed; every upstream exchange on this worker will fail")
        }
    }

    deinit {
        // Reached only when the thread never ran or has been joined.
        if !cleanedUp { tearDown() }
    }

    /// Starts the worker thread; later calls do nothing.
    package func start() {
        lifecycle.withLockedValue { state in
            guard case .initial = state else { return }
            let context = Unmanaged.passRetained(self).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, curlWorkerThreadMain, context)
            if rc == 0 {
                state = .running(thread)
            } else {
                Unmanaged<CurlWorker>.fromOpaque(context).release()
                logger.error("could not start the curl worker thread", metadata: ["errno": "\(rc)"])
            }
        }
    }

    /// Fails the transfers still running, stops and joins the thread and frees curl's
    /// state. Blocks until done (never call it on an EventLoop); later calls return at once.
    package func shutdown() {
        enum Next {
            case none
            case join(pthread_t)
            case tearDownHere
        }
        let next: Next = lifecycle.withLockedValue { state in
            switch state {
            case .initial:
                state = .stopped
                return .tearDownHere
            case .running(let thread):
                state = .stopped
                return .join(thread)
            case .stopped:
                return .none
            }
        }
        switch next {
        case .none:
            return
        case .tearDownHere:
            tearDown()
        case .join(let thread):
            post(.shutdown)
            pthread_join(thread, nil)
        }
        logger.debug("curl worker stopped")
    }

    package func startTransfer(
        _ request: TransferRequest, on eventLoop: any EventLoop,
        handler: @escaping @Sendable (UpstreamEvent) -> Void
    ) -> any UpstreamTransfer {
        let id = nextTransferID.wrappingAdd(1, ordering: .relaxed).oldValue
        let transfer = CurlTransfer(
            id: id, idleTimeoutMilliseconds: request.idleTimeoutMilliseconds, eventLoop: eventLoop, handler: handler,
            worker: self)
        post(.start(transfer, .exchange(request)))
        return transfer
    }

    package func startTunnel(
        _ request: TunnelRequest, on eventLoop: any EventLoop,
        handler: @escaping @Sendable (UpstreamEvent) -> Void
    ) -> any UpstreamTransfer {
        let id = nextTransferID.wrappingAdd(1, ordering: .relaxed).oldValue
        let transfer = CurlTransfer(
            id: id, idleTimeoutMilliseconds: request.idleTimeoutMilliseconds, eventLoop: eventLoop, handler: handler,
            worker: self)
        post(.start(transfer, .tunnel(request)))
        return transfer
    }

    // MARK: Commands (any thread)

    func post(_ command: Command) {
        let outcome: PostOutcome = inbox.withLockedValue { inbox in
            if inbox.closed { return .refused }
            // Only the first command of a batch wakes the worker; it swaps the whole batch.
            let wake = inbox.commands.isEmpty
            inbox.commands.append(command)
            if wake { wakersInFlight.add(1, ordering: .sequentiallyConsistent) }
            return wake ? .wake : .queued
        }
        switch outcome {
        case .queued:
            break
        case .wake:
            #if os(Linux)
                poller?.wake()
            #else
                if let multi { curl_multi_wakeup(multi) }
            #endif
            wakersInFlight.subtract(1, ordering: .sequentiallyConsistent)
        case .refused:
            if case .start(let transfer, _) = command {
                let failure = PendingEvent.event(.failed(.shuttingDown(started: false)))
                transfer.eventLoop.execute { transfer.deliver([failure]) }
            }
        }
    }

    // MARK: The worker thread

    fileprivate func run() {
        logger.debug("curl worker started")
        guard let multi else {
            // Nothing can run; keep refusing until shutdown.
            while !stopping {
                drainInbox()
                flushEvents()
                usleep(10_000)  // only reached when curl_multi_init failed
            }
            tearDown()
            return
        }
        var batch: [Command] = []
        var running: Int32 = 0
        #if os(Linux)
            guard let poller else { return }
            turnNow = monotonicNanoseconds()
            while true {
                inbox.withLockedValue { swap(&$0.commands, &batch) }
                for command in batch { apply(command) }
                batch.removeAll(keepingCapacity: true)
                if stopping { break }
                if curlTimerDeadline <= turnNow {
                    curlTimerDeadline = .max
                    curl_multi_socket_action(multi, ccurl_socket_timeout, 0, &running)
                }
                collectFinished(multi)
                checkIdleDeadlines()
                flushEvents()
                trimWhenIdle()
                // The clock is read as the wait returns, before any callback runs: activity and
                // curl's timers are stamped with the time they happened, not the time the wait began.
                poller.wait(
                    timeoutMilliseconds: waitMilliseconds(),
                    woke: { turnNow = monotonicNanoseconds() },
                    curl: { fd, action in curl_multi_socket_action(multi, fd, action, &running) },
                    tunnel: { fd, events in self.tunnelReady(fd, events: events) })
            }
        #else
            while true {
                turnNow = monotonicNanoseconds()
                inbox.withLockedValue { swap(&$0.commands, &batch) }
                for command in batch { apply(command) }
                batch.removeAll(keepingCapacity: true)
                if stopping { break }
                curl_multi_perform(multi, &running)
                collectFinished(multi)
                checkIdleDeadlines()
                flushEvents()
                trimWhenIdle()
                curl_multi_poll(multi, nil, 0, waitMilliseconds(), nil)
            }
        #endif
        tearDown()
    }

    /// `CURLMOPT_TIMERFUNCTION`: -1 deletes the timer; 0 means at once.
    func setCurlTimer(_ milliseconds: Int) {
        curlTimerDeadline = milliseconds < 0 ? .max : turnNow &+ UInt64(milliseconds) * 1_000_000
    }

    private func drainInbox() {
        var batch: [Command] = []
        inbox.withLockedValue { swap(&$0.commands, &batch) }
        for command in batch { apply(command) }
    }

    private func apply(_ command: Command) {
        switch command {
        case .start(let transfer, let work):
            switch work {
            case .exchange(let request): begin(transfer, request)
            case .tunnel(let request): beginTunnel(transfer, request)
            }
        case .requestBody(let transfer, let buffer):
            guard transfer.onWorker.inMulti else { return }
            if transfer.onWorker.discardsRequestBody {
                transfer.onWorker.consumedAccumulator += buffer.readableBytes
                transfer.onWorker.spentRequestBuffers.append(buffer)
                markDirty(transfer)
                return
            }
            transfer.onWorker.requestQueue.append(buffer)
            if transfer.onWorker.tunnel != nil {
                tunnelSendQueued(transfer)
            } else if transfer.onWorker.readPaused {
                transfer.onWorker.readPaused = false
                noteActivity(transfer)
                updatePause(transfer)
            }
        case .requestEnd(let transfer):
            guard transfer.onWorker.inMulti else { return }
            transfer.onWorker.requestEnded = true
            if transfer.onWorker.tunnel != nil {
                tunnelSendQueued(transfer)
            } else if transfer.onWorker.readPaused {
                transfer.onWorker.readPaused = false
                noteActivity(transfer)
                updatePause(transfer)
            }
        case .resumeReceive(let transfer):
            guard transfer.onWorker.inMulti, transfer.onWorker.receivePaused else { return }
            transfer.onWorker.receivePaused = false
            noteActivity(transfer)
            if transfer.onWorker.tunnel != nil {
                tunnelResumed(transfer)
            } else {
                updatePause(transfer)
            }
        case .cancel(let transfer):
            // The EventLoop side already stopped delivering: no event.
            remove(transfer, forbidReuse: true)
        case .shutdown:
            stopping = true
        }
    }

    /// Sets curl's pause state from both flags. Called only from command handling, never
    /// from a callback of this transfer; curl may re-enter the write callback from here.
    private func updatePause(_ transfer: CurlTransfer) {
        guard let easy = transfer.onWorker.easy else { return }
        let bits =
            (transfer.onWorker.receivePaused ? ccurl_pause_recv : 0)
            | (transfer.onWorker.readPaused ? ccurl_pause_send : 0)
        let code = curl_easy_pause(easy.raw, bits == 0 ? ccurl_pause_cont : bits)
        if !code.isOK {
            let error = UpstreamError(
                curlCode: Int32(bitPattern: code.rawValue), detail: easy.errorText(fallback: code))
            remove(transfer, forbidReuse: true)
            fail(transfer, error)
        }
    }

    private func begin(_ transfer: CurlTransfer, _ request: TransferRequest) {
        guard let multi, let easy = handles.take() else {
            fail(
                transfer,
                UpstreamError(
                    kind: .connect, curlCode: Int32(bitPattern: CURLE_FAILED_INIT.rawValue),
                    detail: "could not create a curl handle"))
            return
        }
        transfer.onWorker.easy = easy
        let configured = configure(transfer, request, easy)
        var code = configured
        if configured.isOK {
            let added = curl_multi_add_handle(multi, easy.raw)
            if added != CURLM_OK { code = CURLE_FAILED_INIT }
        }
        guard code.isOK else {
            let detail = easy.errorText(fallback: code)
            releaseResources(transfer)
            fail(transfer, UpstreamError(kind: .connect, curlCode: Int32(bitPattern: code.rawValue), detail: detail))
            return
        }
        transfer.onWorker.inMulti = true
        transfers[transfer.id] = transfer
        noteActivity(transfer)
        if traceEnabled {
            logger.trace("upstream transfer started", metadata: ["transfer.id": "\(transfer.id)"])
        }
    }

    private func collectFinished(_ multi: UnsafeMutableRawPointer) {
        var left: Int32 = 0
        while let message = curl_multi_info_read(multi, &left) {
            guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle else { continue }
            let code = ccurl_msg_result(message)
            var context: UnsafeMutableRawPointer?
            ccurl_getinfo_ptr(handle, CURLINFO_PRIVATE, &context)
            guard let context else {
                curl_multi_remove_handle(multi, handle)
                continue
            }
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
            let detail = code.isOK ? "" : (transfer.onWorker.easy?.errorText(fallback: code) ?? "")
            if transfer.onWorker.tunnel != nil {
                // Connected (or not): the handle stays in the multi while the tunnel is open.
                tunnelConnectDone(transfer, code: code, detail: detail)
                continue
            }
            remove(transfer, forbidReuse: false)
            if !code.isOK {
                fail(transfer, UpstreamError(curlCode: Int32(bitPattern: code.rawValue), detail: detail))
            } else if !transfer.onWorker.headDelivered {
                fail(transfer, UpstreamError(kind: .reset, curlCode: 0, detail: "the upstream sent no response head"))
            } else {
                transfer.append(.event(.end))
                markDirty(transfer)
            }
        }
    }

    private func checkIdleDeadlines() {
        guard turnNow >= nextIdleCheck else { return }
        var next = UInt64.max
        var expired: [CurlTransfer] = []
        for transfer in transfers.values {
            guard let idle = transfer.idleTimeoutNanoseconds, !transfer.onWorker.receivePaused,
                !transfer.onWorker.readPaused
            else {
                continue
            }
            let deadline = transfer.onWorker.lastActivityNanoseconds &+ idle
            if deadline <= turnNow {
                expired.append(transfer)
            } else {
                next = min(next, deadline)
            }
        }
        nextIdleCheck = next
        for transfer in expired {
            remove(transfer, forbidReuse: true)
            let milliseconds = transfer.idleTimeoutMilliseconds
            fail(
                transfer,
                transfer.onWorker.tunnel == nil
                    ? .idleTimeout(milliseconds: milliseconds) : .tunnelIdle(milliseconds: milliseconds))
        }
    }

    /// Gives the heap's free pages back to the kernel once the worker has been idle (no
    /// transfer, no tunnel) for `idleTrimDelayNanoseconds` after a burst. glibc returns only
    /// the free memory at the top of a heap by itself; the rest of a burst's buffers (download
    /// chunks, upstream connections, every event loop's allocations: `malloc_trim` walks every
    /// arena) stayed resident: 512 clients then 1 MiB downloads left 96 MiB where 41 MiB was in
    /// use (docs/BENCHMARKS.md, "Memory"). Never under load: a transfer starting cancels it.
    private func trimWhenIdle() {
        guard transfers.isEmpty else {
            ranSinceTrim = true
            trimDeadline = .max
            return
        }
        guard ranSinceTrim else { return }
        if trimDeadline == .max {
            trimDeadline = turnNow &+ Self.idleTrimDelayNanoseconds
        } else if trimDeadline <= turnNow {
            #if os(Linux)
                ccurl_trim_heap()
            #endif
            ranSinceTrim = false
            trimDeadline = .max
            idleTrims.add(1, ordering: .relaxed)
        }
    }

    /// Until the next idle check, curl timer or idle trim (ms, rounded up), at most
    /// `maxPollMilliseconds`. Measured from the turn's start: the turn's own work only makes
    /// the wait shorter.
    private func waitMilliseconds() -> Int32 {
        let deadline = min(nextIdleCheck, curlTimerDeadline, trimDeadline)
        if deadline == .max { return Int32(Self.maxPollMilliseconds) }
        if deadline <= turnNow { return 0 }
        return Int32(min(Self.maxPollMilliseconds, (deadline - turnNow + 999_999) / 1_000_000))
    }

    /// Restarts the transfer's idle clock (bytes moved, or it was unpaused).
    func noteActivity(_ transfer: CurlTransfer) {
        transfer.onWorker.lastActivityNanoseconds = turnNow
        if let idle = transfer.idleTimeoutNanoseconds {
            nextIdleCheck = min(nextIdleCheck, turnNow &+ idle)
        }
    }

    /// Hands each dirty transfer's events to its EventLoop. One `execute` per loop, not per
    /// transfer: a turn often finishes several exchanges of one loop, and each `execute`
    /// costs a closure, the loop's task-queue lock and a task run on the loop.
    private func flushEvents() {
        guard !dirty.isEmpty else { return }
        var groups: [(loop: any EventLoop, deliveries: [Delivery])] = []
        for transfer in dirty {
            transfer.onWorker.isDirty = false
            transfer.flushAccumulators()
            if transfer.onWorker.pending.isEmpty { continue }
            let delivery = Delivery(transfer: transfer, batch: transfer.onWorker.pending)
            transfer.onWorker.pending = []
            if let index = groups.firstIndex(where: { $0.loop === transfer.eventLoop }) {
                groups[index].deliveries.append(delivery)
            } else {
                var deliveries: [Delivery] = []
                deliveries.reserveCapacity(dirty.count)
                deliveries.append(delivery)
                groups.append((transfer.eventLoop, deliveries))
            }
        }
        dirty.removeAll(keepingCapacity: true)
        for group in groups {
            let deliveries = group.deliveries
            group.loop.execute {
                for delivery in deliveries { delivery.transfer.deliver(delivery.batch) }
            }
        }
    }

    /// One transfer's events of one worker turn.
    private struct Delivery: Sendable {
        let transfer: CurlTransfer
        let batch: [PendingEvent]
    }

    /// Keeps `transfer` in the worker's table while it is in the multi.
    func register(_ transfer: CurlTransfer) {
        transfers[transfer.id] = transfer
    }

    func markDirty(_ transfer: CurlTransfer) {
        if !transfer.onWorker.isDirty {
            transfer.onWorker.isDirty = true
            dirty.append(transfer)
        }
    }

    func fail(_ transfer: CurlTransfer, _ error: UpstreamError) {
        transfer.append(.event(.failed(error)))
        markDirty(transfer)
    }

    /// Takes the transfer out of the multi (if in) and frees its per-transfer resources.
    /// `forbidReuse`: a half-done exchange; its connection must be closed, never pooled.
    func remove(_ transfer: CurlTransfer, forbidReuse: Bool) {
        guard transfer.onWorker.inMulti, let easy = transfer.onWorker.easy, let multi else { return }
        if forbidReuse { easy.set(.forbidReuse, 1) }
        curl_multi_remove_handle(multi, easy.raw)
        if forbidReuse { easy.set(.forbidReuse, 0) }
        transfer.onWorker.inMulti = false
        transfers[transfer.id] = nil
        releaseResources(transfer)
    }

    func releaseResources(_ transfer: CurlTransfer) {
        if let easy = transfer.onWorker.easy {
            // curl keeps the list's pointer until the next transfer sets its own.
            if transfer.onWorker.headerList != nil { easy.set(.httpHeader, nil) }
        }
        if let list = transfer.onWorker.headerList {
            CurlHeaderList.free(list)
            transfer.onWorker.headerList = nil
        }
        if let easy = transfer.onWorker.easy {
            transfer.onWorker.easy = nil
            // A tunnel's handle (connection-only, with its own share) is never pooled.
            handles.give(easy, keep: !stopping && transfer.onWorker.tunnel == nil)
        }
        if transfer.onWorker.tunnel != nil { releaseTunnel(transfer) }
        // removeAll() on an empty CircularBuffer still allocates fresh storage.
        if !transfer.onWorker.requestQueue.isEmpty { transfer.onWorker.requestQueue.removeAll() }
    }

    /// Refuses new commands, fails what is left, frees curl's state. Runs once, on the worker
    /// thread at its end (or on the `shutdown()`/`deinit` thread when the thread never ran).
    private func tearDown() {
        guard !cleanedUp else { return }
        cleanedUp = true
        stopping = true
        let leftovers: [Command] = inbox.withLockedValue { inbox in
            inbox.closed = true
            let commands = inbox.commands
            inbox.commands = []
            return commands
        }
        // A poster may still be inside curl_multi_wakeup; the multi must outlive it.
        while wakersInFlight.load(ordering: .sequentiallyConsistent) > 0 { sched_yield() }
        for command in leftovers {
            if case .start(let transfer, _) = command { fail(transfer, .shuttingDown(started: false)) }
        }
        for transfer in Array(transfers.values) {
            remove(transfer, forbidReuse: true)
            fail(transfer, .shuttingDown(started: true))
        }
        flushEvents()
        handles.destroyAll()
        tunnelReadBuffer?.deallocate()
        tunnelReadBuffer = nil
        #if os(Linux)
            // The worker may be in deinit: curl's cleanup must not call back into it.
            if let multi { ccurl_multi_setopt_ptr(multi, MultiPointerOption.timerData.raw, nil) }
        #endif
        if let multi { curl_multi_cleanup(multi) }
        #if os(Linux)
            // After the multi: its cleanup closes the cached connections through the poller.
            poller?.close()
        #endif
    }

}

func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

private func curlWorkerThreadMain(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    guard let context else { return nil }
    let worker = Unmanaged<CurlWorker>.fromOpaque(context).takeRetainedValue()
    #if os(Linux)
        // Otherwise it keeps its creator's name (a libdispatch thread's): `top -H` should say what it is.
        _ = ccurl_name_this_thread("curl-worker")
    #endif
    worker.run()
    return nil
}
