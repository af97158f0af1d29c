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

    func receiveBody(_ transfer: CurlTransfer, _ bytes: UnsafeRawBufferPointer) -> Int {
        if bytes.isEmpty { return 0 }
        if transfer.flow.outstanding.load(ordering: .relaxed) >= CurlTransfer.receiveCredit
            || !transfer.flow.clientWritable.load(ordering: .relaxed)
        {
            // Not taking the chunk: curl keeps it and delivers it again after the unpause.
            if !transfer.onWorker.receivePaused {
                transfer.onWorker.receivePaused = true
                transfer.append(.receivePaused)
                markDirty(transfer)
            }
            return Int(ccurl_writefunc_pause)
        }
        transfer.onWorker.lastActivityNanoseconds = turnNow
        transfer.flow.outstanding.add(bytes.count, ordering: .relaxed)
        transfer.appendBody(bytes, allocator: allocator)
        markDirty(transfer)
        return bytes.count
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
