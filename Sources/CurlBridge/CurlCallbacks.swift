import CCurl

// curl's C callbacks and what they do. They run on the worker thread, inside
// curl_multi_socket_action / curl_multi_perform or curl_easy_pause; `context` is the
// transfer, unretained (the worker's table retains it while it is in the multi).

extension CurlWorker {
    func receiveHeader(_ transfer: CurlTransfer, _ line: UnsafeRawBufferPointer) -> Int {
        transfer.onWorker.lastActivityNanoseconds = turnNow
        if transfer.onWorker.head.feed(line) {
            transfer.onWorker.headDelivered = true
            transfer.append(
                .event(
                    .head(
                        status: transfer.onWorker.head.status ?? 0, reason: transfer.onWorker.head.reason,
                        headers: transfer.onWorker.head.headers)))
            markDirty(transfer)
        }
        return line.count
    }

    /// Takes every piece curl delivers, and pauses receiving from here once the credit is spent
    /// or the client cannot take more. Refusing a piece (`CURL_WRITEFUNC_PAUSE`) would make curl
    /// copy the rest of its read (up to 128 KiB, in pieces of 16 KiB) into a buffer it allocates
    /// until the unpause: about three 112 KiB copies and allocations per 1 MiB download, which
    /// also grew the heap (docs/BENCHMARKS.md, "Memory"). Paused here, curl still hands over the
    /// rest of the read it is delivering, then stops reading: at most one read (128 KiB) beyond
    /// the credit, as before.
    func receiveBody(_ transfer: CurlTransfer, _ bytes: UnsafeRawBufferPointer) -> Int {
        if bytes.isEmpty { return 0 }
        if !transfer.onWorker.receivePaused && transfer.receiveCreditSpent && !pauseReceiving(transfer) {
            // curl would not pause: refuse the piece instead; curl keeps it.
            return Int(ccurl_writefunc_pause)
        }
        takeBody(transfer, bytes)
        if !transfer.onWorker.receivePaused && transfer.receiveCreditSpent { _ = pauseReceiving(transfer) }
        return bytes.count
    }

    /// Pauses the transfer's receiving from inside its write callback (curl allows it), keeping
    /// its send side as it is; tells the EventLoop side. False if curl refused.
    private func pauseReceiving(_ transfer: CurlTransfer) -> Bool {
        guard let easy = transfer.onWorker.easy else { return false }
        let bits = ccurl_pause_recv | (transfer.onWorker.readPaused ? ccurl_pause_send : 0)
        guard curl_easy_pause(easy.raw, bits).isOK else { return false }
        noteReceivePaused(transfer)
        return true
    }

    /// Receiving stopped: the EventLoop side is told after the body events before it.
    func noteReceivePaused(_ transfer: CurlTransfer) {
        transfer.onWorker.receivePaused = true
        transfer.append(.receivePaused)
        markDirty(transfer)
    }

    /// Passes upstream bytes (a response body's or a tunnel's) to the EventLoop, counted
    /// against the credit.
    func takeBody(_ transfer: CurlTransfer, _ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        transfer.onWorker.lastActivityNanoseconds = turnNow
        transfer.flow.outstanding.add(bytes.count, ordering: .relaxed)
        transfer.appendBody(bytes, allocator: allocator)
        markDirty(transfer)
    }

    func sendBody(_ transfer: CurlTransfer, _ target: UnsafeMutableRawBufferPointer) -> Int {
        var written = 0
        while written < target.count, var buffer = transfer.onWorker.requestQueue.popFirst() {
            let n = min(buffer.readableBytes, target.count - written)
            buffer.withUnsafeReadableBytes { source in
                UnsafeMutableRawBufferPointer(rebasing: target[written..<(written + n)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<n]))
            }
            buffer.moveReaderIndex(forwardBy: n)
            written += n
            if buffer.readableBytes > 0 {
                transfer.onWorker.requestQueue.prepend(buffer)
            } else {
                transfer.onWorker.spentRequestBuffers.append(buffer)
            }
        }
        if written == 0 {
            if transfer.onWorker.requestEnded { return 0 }
            transfer.onWorker.readPaused = true
            return Int(ccurl_readfunc_pause)
        }
        transfer.onWorker.lastActivityNanoseconds = turnNow
        transfer.onWorker.consumedAccumulator += written
        markDirty(transfer)
        return written
    }
}

/// Runs `body` with the transfer behind `context` without a retain/release pair per
/// callback: the worker's table keeps the transfer alive for the whole curl call.
@inline(__always)
func withTransfer(
    _ context: UnsafeMutableRawPointer?, orElse fallback: Int, _ body: (CurlTransfer) -> Int
) -> Int {
    guard let context else { return fallback }
    return Unmanaged<CurlTransfer>.fromOpaque(context)._withUnsafeGuaranteedRef(body)
}

// curl's C callbacks; `context` is the transfer, unretained (the worker's table retains it).
func curlWriteCallback(
    _ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?
) -> Int {
    withTransfer(context, orElse: 0) { transfer in
        transfer.worker.receiveBody(transfer, UnsafeRawBufferPointer(start: data, count: size * count))
    }
}

func curlHeaderCallback(
    _ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?
) -> Int {
    withTransfer(context, orElse: 0) { transfer in
        transfer.worker.receiveHeader(transfer, UnsafeRawBufferPointer(start: data, count: size * count))
    }
}

func curlTimerCallback(
    _ multi: UnsafeMutableRawPointer?, _ milliseconds: Int, _ context: UnsafeMutableRawPointer?
) -> Int32 {
    guard let context else { return 0 }
    Unmanaged<CurlWorker>.fromOpaque(context)._withUnsafeGuaranteedRef { $0.setCurlTimer(milliseconds) }
    return 0
}

func curlReadCallback(
    _ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?
) -> Int {
    withTransfer(context, orElse: Int(CURL_READFUNC_ABORT)) { transfer in
        transfer.worker.sendBody(transfer, UnsafeMutableRawBufferPointer(start: data, count: size * count))
    }
}
