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
        case start(CurlTransfer)
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

    /// Idle handles kept for reuse. They keep the options every transfer shares
    /// (`prepare`); `configure` sets every option that differs, so no `curl_easy_reset`.
    private static let freeHandleLimit = 64
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
    private let multi: UnsafeMutableRawPointer?
    #if os(Linux)
        /// The worker's epoll set and wakeup eventfd (nil only with `multi`).
        private let poller: CurlSocketPoller?
    #endif
    private let maxConnectionIdleSeconds: Int
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
    private var freeHandles: [EasyHandle] = []
    private var dirty: [CurlTransfer] = []
    private var turnNow: UInt64 = 0
    private var nextIdleCheck: UInt64 = .max
    /// curl's timer (`CURLMOPT_TIMERFUNCTION`): when to call `socket_action(CURL_SOCKET_TIMEOUT)`.
    private var curlTimerDeadline: UInt64 = .max
    private var stopping = false
    private var cleanedUp = false
    private let allocator = ReceiveBufferPool.allocator

    /// Creates the worker (its thread starts with `start()`); limits apply to this worker's connection cache.
    /// `maxConnectionIdleSeconds` (`CURLOPT_MAXAGE_CONN`) must stay under the upstreams' keep-alive timeout.
    package init(
        logger: Logger, maxConnectionsPerHost: Int = 64, maxTotalConnections: Int = 256,
        maxConnectionIdleSeconds: Int = 50
    ) {
        self.logger = logger
        self.traceEnabled = logger.logLevel <= .trace
        self.maxConnectionIdleSeconds = maxConnectionIdleSeconds
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
        #endif
        self.multi = multi
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
        let transfer = CurlTransfer(id: id, request: request, eventLoop: eventLoop, handler: handler, worker: self)
        post(.start(transfer))
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
            if case .start(let transfer) = command {
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
                poller.wait(timeoutMilliseconds: waitMilliseconds()) { fd, action in
                    curl_multi_socket_action(multi, fd, action, &running)
                }
                turnNow = monotonicNanoseconds()
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
                curl_multi_poll(multi, nil, 0, waitMilliseconds(), nil)
            }
        #endif
        tearDown()
    }

    /// `CURLMOPT_TIMERFUNCTION`: -1 deletes the timer; 0 means at once.
    fileprivate func setCurlTimer(_ milliseconds: Int) {
        curlTimerDeadline = milliseconds < 0 ? .max : turnNow &+ UInt64(milliseconds) * 1_000_000
    }

    private func drainInbox() {
        var batch: [Command] = []
        inbox.withLockedValue { swap(&$0.commands, &batch) }
        for command in batch { apply(command) }
    }

    private func apply(_ command: Command) {
        switch command {
        case .start(let transfer):
            begin(transfer)
        case .requestBody(let transfer, let buffer):
            guard transfer.inMulti else { return }
            if transfer.discardsRequestBody {
                transfer.consumedAccumulator += buffer.readableBytes
                transfer.spentRequestBuffers.append(buffer)
                markDirty(transfer)
                return
            }
            transfer.requestQueue.append(buffer)
            if transfer.readPaused {
                transfer.readPaused = false
                noteActivity(transfer)
                updatePause(transfer)
            }
        case .requestEnd(let transfer):
            guard transfer.inMulti else { return }
            transfer.requestEnded = true
            if transfer.readPaused {
                transfer.readPaused = false
                noteActivity(transfer)
                updatePause(transfer)
            }
        case .resumeReceive(let transfer):
            guard transfer.inMulti, transfer.receivePaused else { return }
            transfer.receivePaused = false
            noteActivity(transfer)
            updatePause(transfer)
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
        guard let easy = transfer.easy else { return }
        let bits =
            (transfer.receivePaused ? ccurl_pause_recv : 0) | (transfer.readPaused ? ccurl_pause_send : 0)
        let code = curl_easy_pause(easy.raw, bits == 0 ? ccurl_pause_cont : bits)
        if !code.isOK {
            let error = UpstreamError(
                curlCode: Int32(bitPattern: code.rawValue), detail: easy.errorText(fallback: code))
            remove(transfer, forbidReuse: true)
            fail(transfer, error)
        }
    }

    private func begin(_ transfer: CurlTransfer) {
        guard let multi, let easy = takeHandle() else {
            fail(
                transfer,
                UpstreamError(
                    kind: .connect, curlCode: Int32(bitPattern: CURLE_FAILED_INIT.rawValue),
                    detail: "could not create a curl handle"))
            return
        }
        transfer.easy = easy
        let configured = configure(transfer, easy)
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
        transfer.inMulti = true
        transfers[transfer.id] = transfer
        noteActivity(transfer)
        if traceEnabled {
            logger.trace("upstream transfer started", metadata: ["transfer.id": "\(transfer.id)"])
        }
    }

    /// The options every transfer shares, set once per new handle; returns the first failure.
    private func prepare(_ easy: EasyHandle) -> CURLcode {
        var first = CURLE_OK
        func check(_ code: CURLcode) {
            if first.isOK && !code.isOK { first = code }
        }
        check(easy.set(.errorBuffer, UnsafeMutableRawPointer(easy.errorBuffer)))
        check(easy.set(.write, curlWriteCallback))
        check(easy.set(.header, curlHeaderCallback))
        check(easy.set(.read, curlReadCallback))
        #if os(Linux)
            if let poller {
                let pollerContext = Unmanaged.passUnretained(poller).toOpaque()
                check(easy.set(.sockopt, curlSockoptCallback))
                check(easy.set(.sockoptData, pollerContext))
                check(easy.set(.closeSocket, curlCloseSocketCallback))
                check(easy.set(.closeSocketData, pollerContext))
            }
        #endif
        check(easy.set(.noSignal, 1))
        check(easy.set(.tcpNoDelay, 1))
        check(easy.set(.tcpKeepAlive, 1))
        check(easy.set(.pathAsIs, 1))
        check(easy.set(.httpTransferDecoding, 1))
        check(easy.set(.httpContentDecoding, 0))
        check(easy.set(.followLocation, 0))
        check(easy.set(.httpVersion, Int(CURL_HTTP_VERSION_1_1)))
        check(easy.set(.protocols, "http,https"))
        check(easy.set(.redirectProtocols, "http,https"))
        // An empty proxy ignores http_proxy and friends from the environment.
        check(easy.set(.proxy, ""))
        check(easy.set(.maxAgeConnection, maxConnectionIdleSeconds))
        check(easy.set(.bufferSize, Self.receiveBufferSize))
        return first
    }

    /// Sets every option that can differ between transfers (a reused handle still holds
    /// the previous transfer's); returns the first failure.
    private func configure(_ transfer: CurlTransfer, _ easy: EasyHandle) -> CURLcode {
        let request = transfer.request
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        var first = CURLE_OK
        func check(_ code: CURLcode) {
            if first.isOK && !code.isOK { first = code }
        }
        easy.errorBuffer[0] = 0
        check(easy.set(.privateData, context))
        check(easy.set(.writeData, context))
        check(easy.set(.headerData, context))
        check(easy.set(.readData, context))
        check(easy.set(.url, request.url))
        // 0 is curl's default (300 s).
        check(easy.set(.connectTimeoutMilliseconds, max(0, request.connectTimeoutMilliseconds)))

        // UPLOAD first: setting it also resets the method, which NOBODY and CUSTOMREQUEST then refine.
        let isHead = request.method == "HEAD"
        var customMethod: String?
        switch (isHead, request.body) {
        case (true, _):
            check(easy.set(.upload, 0))
            check(easy.set(.noBody, 1))
            transfer.discardsRequestBody = true
        case (false, .none):
            check(easy.set(.upload, 0))
            check(easy.set(.noBody, 0))
            if request.method != "GET" { customMethod = request.method }
            transfer.discardsRequestBody = true
        case (false, .length(let length)):
            check(easy.set(.upload, 1))
            check(easy.set(.noBody, 0))
            check(easy.set(.inFileSizeLarge, max(0, length)))
            if request.method != "PUT" { customMethod = request.method }
        case (false, .chunked):
            check(easy.set(.upload, 1))
            check(easy.set(.noBody, 0))
            check(easy.set(.inFileSizeLarge, -1))
            if request.method != "PUT" { customMethod = request.method }
        }
        check(easy.set(.customRequest, customMethod))

        // curl adds `Expect: 100-continue` only to uploads; without one the blank is dead
        // weight that curl's header checks would scan on every lookup.
        guard let list = Self.headerList(request.headers, blankExpect: !transfer.discardsRequestBody) else {
            return CURLE_OUT_OF_MEMORY
        }
        transfer.headerList = list
        check(easy.set(.httpHeader, list))
        return first
    }

    /// The request's headers for curl, plus the blanks that stop curl adding its own
    /// (`Accept:` always, `Expect:` when `blankExpect`: curl adds that one only to uploads).
    /// `Content-Length`/`Transfer-Encoding` are left to curl: it frames the body from `RequestBodyFraming`.
    /// Headers whose name is empty or whose name or value holds CR, LF or NUL are dropped.
    ///
    /// One `malloc` holds the nodes and their text (curl only reads a header list): free it
    /// with `freeHeaderList`, never `curl_slist_free_all`.
    static func headerList(_ headers: [HeaderField], blankExpect: Bool = true) -> UnsafeMutablePointer<curl_slist>? {
        let acceptBlank: StaticString = "Accept:"
        let expectBlank: StaticString = "Expect:"
        var textCapacity = 16  // both blanks with their NULs
        for header in headers { textCapacity += header.name.utf8.count + header.value.utf8.count + 3 }
        let nodeCapacity = headers.count + 2
        let nodeBytes = nodeCapacity * MemoryLayout<curl_slist>.stride
        guard let block = malloc(nodeBytes + textCapacity) else { return nil }
        let nodes = block.bindMemory(to: curl_slist.self, capacity: nodeCapacity)
        let text = (block + nodeBytes).bindMemory(to: UInt8.self, capacity: textCapacity)
        var nodeCount = 0
        var used = 0

        func link(_ start: Int) {
            nodes[nodeCount] = curl_slist(
                data: UnsafeMutableRawPointer(text + start).assumingMemoryBound(to: CChar.self), next: nil)
            if nodeCount > 0 { nodes[nodeCount - 1].next = nodes + nodeCount }
            nodeCount += 1
        }
        /// Copies `s` at `used`; false (nothing kept) when it holds CR, LF or NUL.
        func copy(_ s: String) -> Bool {
            let copied = s.utf8.withContiguousStorageIfAvailable { bytes in
                copyChecked(UnsafeRawBufferPointer(bytes))
            }
            if let copied { return copied }
            var bridged = s  // not native UTF-8 (bridged): make it so, once
            return bridged.withUTF8 { copyChecked(UnsafeRawBufferPointer($0)) }
        }
        func copyChecked(_ bytes: UnsafeRawBufferPointer) -> Bool {
            for byte in bytes where byte <= UInt8(ascii: "\r") {
                if byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") || byte == 0 { return false }
            }
            if let base = bytes.baseAddress {
                UnsafeMutableRawPointer(text + used).copyMemory(from: base, byteCount: bytes.count)
            }
            used += bytes.count
            return true
        }

        var sawAccept = false
        var sawExpect = false
        for header in headers {
            let name = header.name
            if name.isEmpty || Self.isFramingHeader(name) { continue }
            let start = used
            // `Name;` is curl's spelling of a header with an empty value (`Name:` would delete it).
            guard copy(name) else { continue }
            if header.value.isEmpty {
                text[used] = UInt8(ascii: ";")
                used += 1
            } else {
                text[used] = UInt8(ascii: ":")
                text[used + 1] = UInt8(ascii: " ")
                used += 2
                guard copy(header.value) else {
                    used = start
                    continue
                }
            }
            text[used] = 0
            used += 1
            link(start)
            if ASCII.equalsLowercase(name.utf8, "accept") { sawAccept = true }
            if ASCII.equalsLowercase(name.utf8, "expect") { sawExpect = true }
        }
        func appendBlank(_ blank: StaticString) {
            let start = used
            blank.withUTF8Buffer { bytes in
                UnsafeMutableRawPointer(text + used).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
                used += bytes.count
            }
            text[used] = 0
            used += 1
            link(start)
        }
        if !sawAccept { appendBlank(acceptBlank) }
        if blankExpect && !sawExpect { appendBlank(expectBlank) }
        return nodes
    }

    /// Frees a list made by `headerList`.
    static func freeHeaderList(_ list: UnsafeMutablePointer<curl_slist>) {
        free(UnsafeMutableRawPointer(list))
    }

    private static func isFramingHeader(_ name: String) -> Bool {
        ASCII.equalsLowercase(name.utf8, "content-length") || ASCII.equalsLowercase(name.utf8, "transfer-encoding")
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
            let detail = code.isOK ? "" : (transfer.easy?.errorText(fallback: code) ?? "")
            remove(transfer, forbidReuse: false)
            if !code.isOK {
                fail(transfer, UpstreamError(curlCode: Int32(bitPattern: code.rawValue), detail: detail))
            } else if !transfer.headDelivered {
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
            guard let idle = transfer.idleTimeoutNanoseconds, !transfer.receivePaused, !transfer.readPaused else {
                continue
            }
            let deadline = transfer.lastActivityNanoseconds &+ idle
            if deadline <= turnNow {
                expired.append(transfer)
            } else {
                next = min(next, deadline)
            }
        }
        nextIdleCheck = next
        for transfer in expired {
            remove(transfer, forbidReuse: true)
            fail(transfer, .idleTimeout(milliseconds: transfer.request.idleTimeoutMilliseconds))
        }
    }

    /// Until the next idle check or curl timer (ms, rounded up), at most `maxPollMilliseconds`.
    /// Measured from the turn's start: the turn's own work only makes the wait shorter.
    private func waitMilliseconds() -> Int32 {
        let deadline = min(nextIdleCheck, curlTimerDeadline)
        if deadline == .max { return Int32(Self.maxPollMilliseconds) }
        if deadline <= turnNow { return 0 }
        return Int32(min(Self.maxPollMilliseconds, (deadline - turnNow + 999_999) / 1_000_000))
    }

    /// Restarts the transfer's idle clock (bytes moved, or it was unpaused).
    private func noteActivity(_ transfer: CurlTransfer) {
        transfer.lastActivityNanoseconds = turnNow
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
            transfer.isDirty = false
            transfer.flushAccumulators()
            if transfer.pending.isEmpty { continue }
            let delivery = Delivery(transfer: transfer, batch: transfer.pending)
            transfer.pending = []
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

    private func markDirty(_ transfer: CurlTransfer) {
        if !transfer.isDirty {
            transfer.isDirty = true
            dirty.append(transfer)
        }
    }

    private func fail(_ transfer: CurlTransfer, _ error: UpstreamError) {
        transfer.append(.event(.failed(error)))
        markDirty(transfer)
    }

    /// Takes the transfer out of the multi (if in) and frees its per-transfer resources.
    /// `forbidReuse`: a half-done exchange; its connection must be closed, never pooled.
    private func remove(_ transfer: CurlTransfer, forbidReuse: Bool) {
        guard transfer.inMulti, let easy = transfer.easy, let multi else { return }
        if forbidReuse { easy.set(.forbidReuse, 1) }
        curl_multi_remove_handle(multi, easy.raw)
        if forbidReuse { easy.set(.forbidReuse, 0) }
        transfer.inMulti = false
        transfers[transfer.id] = nil
        releaseResources(transfer)
    }

    private func releaseResources(_ transfer: CurlTransfer) {
        if let easy = transfer.easy {
            // curl keeps the list's pointer until the next transfer sets its own.
            if transfer.headerList != nil { easy.set(.httpHeader, nil) }
        }
        if let list = transfer.headerList {
            Self.freeHeaderList(list)
            transfer.headerList = nil
        }
        if let easy = transfer.easy {
            transfer.easy = nil
            if freeHandles.count < Self.freeHandleLimit && !stopping {
                freeHandles.append(easy)
            } else {
                easy.destroy()
            }
        }
        // removeAll() on an empty CircularBuffer still allocates fresh storage.
        if !transfer.requestQueue.isEmpty { transfer.requestQueue.removeAll() }
    }

    private func takeHandle() -> EasyHandle? {
        if let handle = freeHandles.popLast() { return handle }
        guard let handle = EasyHandle.make() else { return nil }
        guard prepare(handle).isOK else {
            handle.destroy()
            return nil
        }
        return handle
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
            if case .start(let transfer) = command { fail(transfer, .shuttingDown(started: false)) }
        }
        for transfer in Array(transfers.values) {
            remove(transfer, forbidReuse: true)
            fail(transfer, .shuttingDown(started: true))
        }
        flushEvents()
        for handle in freeHandles { handle.destroy() }
        freeHandles.removeAll()
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

    // MARK: Callbacks (worker thread, inside curl_multi_socket_action/perform or curl_easy_pause)

    fileprivate func receiveHeader(_ transfer: CurlTransfer, _ line: UnsafeRawBufferPointer) -> Int {
        transfer.lastActivityNanoseconds = turnNow
        if transfer.head.feed(line) {
            transfer.headDelivered = true
            transfer.append(.event(.head(status: transfer.head.status ?? 0, headers: transfer.head.headers)))
            markDirty(transfer)
        }
        return line.count
    }

    fileprivate func receiveBody(_ transfer: CurlTransfer, _ bytes: UnsafeRawBufferPointer) -> Int {
        if bytes.isEmpty { return 0 }
        if transfer.outstanding.load(ordering: .relaxed) >= CurlTransfer.receiveCredit
            || !transfer.clientWritable.load(ordering: .relaxed)
        {
            // Not taking the chunk: curl keeps it and delivers it again after the unpause.
            if !transfer.receivePaused {
                transfer.receivePaused = true
                transfer.append(.receivePaused)
                markDirty(transfer)
            }
            return Int(ccurl_writefunc_pause)
        }
        transfer.lastActivityNanoseconds = turnNow
        transfer.outstanding.add(bytes.count, ordering: .relaxed)
        transfer.appendBody(bytes, allocator: allocator)
        markDirty(transfer)
        return bytes.count
    }

    fileprivate func sendBody(_ transfer: CurlTransfer, _ target: UnsafeMutableRawBufferPointer) -> Int {
        var written = 0
        while written < target.count, var buffer = transfer.requestQueue.popFirst() {
            let n = min(buffer.readableBytes, target.count - written)
            buffer.withUnsafeReadableBytes { source in
                UnsafeMutableRawBufferPointer(rebasing: target[written..<(written + n)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<n]))
            }
            buffer.moveReaderIndex(forwardBy: n)
            written += n
            if buffer.readableBytes > 0 {
                transfer.requestQueue.prepend(buffer)
            } else {
                transfer.spentRequestBuffers.append(buffer)
            }
        }
        if written == 0 {
            if transfer.requestEnded { return 0 }
            transfer.readPaused = true
            return Int(ccurl_readfunc_pause)
        }
        transfer.lastActivityNanoseconds = turnNow
        transfer.consumedAccumulator += written
        markDirty(transfer)
        return written
    }
}

private func monotonicNanoseconds() -> UInt64 {
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

/// Runs `body` with the transfer behind `context` without a retain/release pair per
/// callback: the worker's table keeps the transfer alive for the whole curl call.
@inline(__always)
private func withTransfer(
    _ context: UnsafeMutableRawPointer?, orElse fallback: Int, _ body: (CurlTransfer) -> Int
) -> Int {
    guard let context else { return fallback }
    return Unmanaged<CurlTransfer>.fromOpaque(context)._withUnsafeGuaranteedRef(body)
}

// curl's C callbacks; `context` is the transfer, unretained (the worker's table retains it).
private func curlWriteCallback(
    _ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?
) -> Int {
    withTransfer(context, orElse: 0) { transfer in
        transfer.worker.receiveBody(transfer, UnsafeRawBufferPointer(start: data, count: size * count))
    }
}

private func curlHeaderCallback(
    _ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?
) -> Int {
    withTransfer(context, orElse: 0) { transfer in
        transfer.worker.receiveHeader(transfer, UnsafeRawBufferPointer(start: data, count: size * count))
    }
}

private func curlTimerCallback(
    _ multi: UnsafeMutableRawPointer?, _ milliseconds: Int, _ context: UnsafeMutableRawPointer?
) -> Int32 {
    guard let context else { return 0 }
    Unmanaged<CurlWorker>.fromOpaque(context)._withUnsafeGuaranteedRef { $0.setCurlTimer(milliseconds) }
    return 0
}

private func curlReadCallback(
    _ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?
) -> Int {
    withTransfer(context, orElse: Int(CURL_READFUNC_ABORT)) { transfer in
        transfer.worker.sendBody(transfer, UnsafeMutableRawBufferPointer(start: data, count: size * count))
    }
}
