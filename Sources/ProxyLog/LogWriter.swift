#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The one thread that writes log bytes to the output (stderr): event loops never block on
/// a slow terminal or a full pipe, and lines from several loops never interleave mid-line
/// (only this thread writes, whole lines at a time).
///
/// Loops hand over whole buffers of complete lines (`submit`), at most once per loop tick.
/// The queue is bounded: beyond `queueLimit` bytes a submitted buffer is dropped and its
/// lines counted; once the queue has drained, one line says how many were dropped.
package final class LogWriter: @unchecked Sendable {
    /// The bound on queued bytes: a burst this large is absorbed, a stuck output loses
    /// lines rather than growing memory.
    package static let defaultQueueLimit = 4 << 20
    /// Spare buffers kept for reuse, and the most memory each may keep.
    private static let maxSpares = 16
    private static let spareCapacity = 64 * 1024
    /// Linux's `UIO_MAXIOV` (`IOV_MAX` does not reach Swift).
    private static let maxVectors = 1024

    private struct Chunk {
        var buffer: LineBuffer
        var lines: Int
    }

    private enum State {
        case running, stopping, stopped
    }

    private let fileDescriptor: Int32
    private let queueLimit: Int
    /// Renders the "lines dropped" notice in the current format.
    private let dropNotice: @Sendable (Int) -> LineBuffer
    private let sync = ConditionMutex()

    // Guarded by `sync`.
    private var queue: [Chunk] = []
    private var queuedBytes = 0
    private var droppedLines = 0
    private var totalDropped = 0
    private var submitted: UInt64 = 0
    private var completed: UInt64 = 0
    private var spares: [LineBuffer] = []
    private var state = State.running
    private var hasThread = false
    private var thread = pthread_t()

    /// Starts the writer thread. `dropNotice(n)` renders the line written after `n` lines
    /// were dropped.
    package init(
        fileDescriptor: Int32 = 2, queueLimit: Int = LogWriter.defaultQueueLimit,
        dropNotice: @escaping @Sendable (Int) -> LineBuffer
    ) {
        self.fileDescriptor = fileDescriptor
        self.queueLimit = queueLimit
        self.dropNotice = dropNotice
        start()
    }

    private func start() {
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { raw in
                guard let raw else { return nil }
                let writer = Unmanaged<LogWriter>.fromOpaque(raw).takeRetainedValue()
                LogWriter.nameThisThread()
                LogWriter.blockBrokenPipeSignal()
                writer.run()
                return nil
            }, context)
        if rc == 0 {
            sync.withLock {
                self.thread = thread
                self.hasThread = true
            }
        } else {
            // No thread: `submit` writes in place (slower, but no line is lost).
            Unmanaged<LogWriter>.fromOpaque(context).release()
        }
    }

    /// `top -H` and /proc show the thread as `log-writer`. (pthread_setname_np needs
    /// _GNU_SOURCE and prctl is variadic: neither reaches Swift; the comm file does.)
    private static func nameThisThread() {
        #if canImport(Glibc)
            let fd = open("/proc/thread-self/comm", O_WRONLY)
            guard fd >= 0 else { return }
            _ = "log-writer".withCString { write(fd, $0, strlen($0)) }
            _ = Glibc.close(fd)
        #endif
    }

    /// A stderr whose reader has gone (a log collector that died) makes `writev` fail with
    /// EPIPE on this thread instead of killing the process with SIGPIPE: the proxy keeps
    /// serving, and the lines are lost.
    private static func blockBrokenPipeSignal() {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
    }

    /// Queues a buffer of complete lines and returns an empty buffer for the caller to
    /// fill next (a recycled one when there is one). A buffer that would take the queue
    /// past its bound is dropped and its lines counted.
    package func submit(_ buffer: LineBuffer, lines: Int) -> LineBuffer {
        enqueue(buffer, lines: lines, wantsSpare: true) ?? LineBuffer(capacity: 4096)
    }

    /// Queues a buffer the caller does not refill (a library message).
    package func submitLast(_ buffer: LineBuffer, lines: Int) {
        _ = enqueue(buffer, lines: lines, wantsSpare: false)
    }

    private func enqueue(_ buffer: LineBuffer, lines: Int, wantsSpare: Bool) -> LineBuffer? {
        guard !buffer.isEmpty else { return buffer }
        sync.lock()
        guard hasThread, state == .running else {
            sync.unlock()
            // No writer thread (it could not start, or it has stopped): write in place.
            writeAll([buffer])
            buffer.removeAll()
            return buffer
        }
        if queuedBytes + buffer.count > queueLimit {
            droppedLines += lines
            totalDropped += lines
            sync.unlock()
            buffer.removeAll()
            return buffer
        }
        queue.append(Chunk(buffer: buffer, lines: lines))
        queuedBytes += buffer.count
        submitted += 1
        let spare = wantsSpare ? spares.popLast() : nil
        sync.broadcast()
        sync.unlock()
        return spare
    }

    /// Lines dropped since the start because the queue was full.
    package var droppedLineCount: Int { sync.withLock { totalDropped } }

    /// Waits until every buffer submitted before this call is written, at most `timeout`
    /// seconds; false when the time ran out (the output is stuck).
    @discardableResult
    package func flush(timeout: Double) -> Bool {
        let deadline = ConditionMutex.monotonicNanoseconds() + UInt64(max(0, timeout) * 1e9)
        sync.lock()
        defer { sync.unlock() }
        let target = submitted
        while completed < target && state != .stopped {
            if !sync.wait(untilNanoseconds: deadline) && ConditionMutex.monotonicNanoseconds() >= deadline {
                return completed >= target
            }
        }
        return completed >= target
    }

    /// Writes what is queued (at most `timeout` seconds), then stops the thread. Later
    /// submissions are written in place by the caller.
    @discardableResult
    package func close(timeout: Double) -> Bool {
        let deadline = ConditionMutex.monotonicNanoseconds() + UInt64(max(0, timeout) * 1e9)
        sync.lock()
        guard hasThread else {
            sync.unlock()
            return true
        }
        if state == .running { state = .stopping }
        sync.broadcast()
        while state != .stopped {
            if !sync.wait(untilNanoseconds: deadline) && ConditionMutex.monotonicNanoseconds() >= deadline {
                sync.unlock()
                return false
            }
        }
        let thread = self.thread
        hasThread = false
        sync.unlock()
        pthread_join(thread, nil)
        return true
    }

    // MARK: - The writer thread

    private func run() {
        var batch: [Chunk] = []
        sync.lock()
        while true {
            while queue.isEmpty && droppedLines == 0 && state == .running {
                sync.wait()
            }
            if queue.isEmpty {
                if droppedLines > 0 {
                    writeDropNotice()
                    continue
                }
                break  // stopping, and everything is written
            }
            swap(&batch, &queue)
            sync.unlock()
            writeAll(batch.map(\.buffer))
            sync.lock()
            for chunk in batch {
                queuedBytes -= chunk.buffer.count
                chunk.buffer.removeAll()
                chunk.buffer.shrink(toAtMost: Self.spareCapacity)
                if spares.count < Self.maxSpares { spares.append(chunk.buffer) }
            }
            completed += UInt64(batch.count)
            batch.removeAll(keepingCapacity: true)
            // Caught up: say how many lines were lost, in order, after the lines before them.
            if queue.isEmpty && droppedLines > 0 { writeDropNotice() }
            sync.broadcast()
        }
        state = .stopped
        sync.broadcast()
        sync.unlock()
    }

    /// Called and returns with `sync` held; writes without it.
    private func writeDropNotice() {
        let count = droppedLines
        droppedLines = 0
        sync.unlock()
        writeAll([dropNotice(count)])
        sync.lock()
    }

    /// `writev` in as few calls as the kernel allows. A write error (a closed stderr) loses
    /// these bytes but never spins: the next batch tries again.
    private func writeAll(_ buffers: [LineBuffer]) {
        var vectors: [iovec] = []
        vectors.reserveCapacity(min(buffers.count, Self.maxVectors))
        var start = 0
        while start < buffers.count {
            let end = min(buffers.count, start + Self.maxVectors)
            vectors.removeAll(keepingCapacity: true)
            for buffer in buffers[start..<end] where !buffer.isEmpty {
                vectors.append(iovec(iov_base: UnsafeMutableRawPointer(buffer.base), iov_len: buffer.count))
            }
            writeVectors(&vectors)
            start = end
        }
    }

    private func writeVectors(_ vectors: inout [iovec]) {
        var first = 0
        while first < vectors.count {
            let written = vectors[first...].withUnsafeBufferPointer {
                writev(fileDescriptor, $0.baseAddress, Int32($0.count))
            }
            if written < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    // A non-blocking stderr that is full: wait until it drains.
                    var poller = pollfd(fd: fileDescriptor, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&poller, 1, 1000)
                    continue
                }
                return
            }
            var remaining = written
            while first < vectors.count && remaining >= vectors[first].iov_len {
                remaining -= vectors[first].iov_len
                first += 1
            }
            if remaining > 0 {
                vectors[first].iov_base = vectors[first].iov_base.map { $0 + remaining }
                vectors[first].iov_len -= remaining
            }
        }
    }
}
