import CCurl
import HeaderFields
import NIOCore
import Upstream

#if canImport(Glibc)
    import Glibc
#endif

// WebSocket tunnels (docs/DESIGN.md, "WebSocket tunnels"). curl makes the connection
// (`CURLOPT_CONNECT_ONLY`: TCP, and the TLS handshake for https) in the worker's multi like any
// transfer; once it reports the handle done, the worker writes the handshake and moves bytes
// with `curl_easy_send`/`curl_easy_recv`, waiting on the socket in its own epoll set. The
// handle stays in the multi until the tunnel ends: removing it is what closes the connection
// (libcurl 7.88 closes a connect-only connection whose handle leaves the multi, and
// `curl_easy_send`/`recv` find the connection only through the handle's multi).

extension CurlWorker {
    func beginTunnel(_ transfer: CurlTransfer, _ request: TunnelRequest) {
        #if os(Linux)
            let canTunnel = multi != nil && poller != nil
        #else
            let canTunnel = false
        #endif
        guard canTunnel, let multi, let easy = handles.makeFresh() else {
            fail(
                transfer,
                UpstreamError(
                    kind: .connect, curlCode: Int32(bitPattern: CURLE_FAILED_INIT.rawValue),
                    detail: canTunnel ? "could not create a curl handle" : "tunnels need the epoll worker (Linux)"))
            return
        }
        let share = curl_share_init()
        transfer.onWorker.easy = easy
        transfer.onWorker.tunnel = TunnelState(handshake: request.handshake, share: share)
        var first = share == nil ? CURLE_OUT_OF_MEMORY : CURLE_OK
        func check(_ code: CURLcode) {
            if first.isOK && !code.isOK { first = code }
        }
        if let share, ccurl_share_connections(share) != CURLSHE_OK { first = CURLE_FAILED_INIT }
        easy.errorBuffer[0] = 0
        check(easy.set(.privateData, Unmanaged.passUnretained(transfer).toOpaque()))
        configureConnection(
            easy, url: request.url, connectTimeoutMilliseconds: request.connectTimeoutMilliseconds,
            tls: request.tls ?? UpstreamTLS(), check)
        // Not FORBID_REUSE: curl 7.88 would close the connection as soon as it is made.
        // A connect-only connection is never reused anyway, and lives in the tunnel's own cache.
        check(easy.set(.connectOnly, 1))
        check(easy.set(.share, share))
        if first.isOK && curl_multi_add_handle(multi, easy.raw) != CURLM_OK { first = CURLE_FAILED_INIT }
        guard first.isOK else {
            let detail = easy.errorText(fallback: first)
            releaseResources(transfer)
            fail(transfer, UpstreamError(kind: .connect, curlCode: Int32(bitPattern: first.rawValue), detail: detail))
            return
        }
        transfer.onWorker.inMulti = true
        register(transfer)
        noteActivity(transfer)
    }

    /// curl finished the connect-only transfer: connected, or failed to connect.
    func tunnelConnectDone(_ transfer: CurlTransfer, code: CURLcode, detail: String) {
        guard code.isOK else {
            remove(transfer, forbidReuse: true)
            fail(transfer, UpstreamError(curlCode: Int32(bitPattern: code.rawValue), detail: detail))
            return
        }
        var fd: curl_socket_t = -1
        if let easy = transfer.onWorker.easy { _ = ccurl_getinfo_socket(easy.raw, CURLINFO_ACTIVESOCKET, &fd) }
        guard fd >= 0 else {
            closeTunnel(
                transfer,
                UpstreamError(kind: .connect, curlCode: 0, detail: "curl reported no socket for the tunnel"))
            return
        }
        transfer.onWorker.tunnel?.fd = fd
        transfer.onWorker.tunnel?.phase = .sendingHandshake
        tunnelsByFD[fd] = transfer
        tunnelWrite(transfer)
        updateTunnelInterest(transfer)
    }

    /// The poller's readiness for a tunnel's socket; false when no tunnel has `fd`.
    func tunnelReady(_ fd: Int32, events: UInt32) -> Bool {
        guard let transfer = tunnelsByFD[fd] else { return false }
        #if os(Linux)
            if events & (ccurl_epollout | ccurl_epollerr | ccurl_epollhup) != 0 { tunnelWrite(transfer) }
            if events & (ccurl_epollin | ccurl_epollerr | ccurl_epollhup) != 0 { tunnelRead(transfer) }
        #endif
        updateTunnelInterest(transfer)
        return true
    }

    /// New client bytes, or the client's end: write what the socket takes.
    func tunnelSendQueued(_ transfer: CurlTransfer) {
        tunnelWrite(transfer)
        updateTunnelInterest(transfer)
    }

    /// The EventLoop gave credit back (or became writable): read again at once. With TLS,
    /// OpenSSL may hold decrypted bytes that no epoll readiness will announce.
    func tunnelResumed(_ transfer: CurlTransfer) {
        tunnelRead(transfer)
        updateTunnelInterest(transfer)
    }

    // MARK: Writing

    private enum SendResult {
        case wrote(Int)
        case wouldBlock
        case failed(CURLcode)
    }

    /// One `curl_easy_send` of `buffer`'s readable bytes. After a would-block the same buffer
    /// must be offered again, unchanged: OpenSSL retries a write with the same pointer and length.
    private func send(_ easy: EasyHandle, _ buffer: ByteBuffer) -> SendResult {
        buffer.withUnsafeReadableBytes { bytes in
            var written = 0
            let code = curl_easy_send(easy.raw, bytes.baseAddress, bytes.count, &written)
            if code == CURLE_AGAIN { return .wouldBlock }
            return code.isOK ? .wrote(written) : .failed(code)
        }
    }

    /// Writes the handshake, or (after a `101`) the client's queued bytes, until the socket is full.
    private func tunnelWrite(_ transfer: CurlTransfer) {
        guard transfer.onWorker.inMulti, let easy = transfer.onWorker.easy, let tunnel = transfer.onWorker.tunnel
        else { return }
        switch tunnel.phase {
        case .sendingHandshake:
            var handshake = tunnel.handshake
            while handshake.readableBytes > 0 {
                switch send(easy, handshake) {
                case .wouldBlock:
                    return
                case .failed(let code):
                    closeTunnel(transfer, .tunnelBroken(curlCode: code, detail: easy.errorText(fallback: code)))
                    return
                case .wrote(let n):
                    handshake.moveReaderIndex(forwardBy: n)
                    transfer.onWorker.tunnel?.handshake.moveReaderIndex(forwardBy: n)
                    noteActivity(transfer)
                }
            }
            transfer.onWorker.tunnel?.phase = .readingHead
            // Released on the EventLoop with the next batch, like request body buffers.
            transfer.onWorker.spentRequestBuffers.append(handshake)
            transfer.onWorker.tunnel?.handshake = ByteBuffer()
            markDirty(transfer)
        case .open:
            while let buffer = transfer.onWorker.requestQueue.first {
                if buffer.readableBytes == 0 {
                    transfer.onWorker.spentRequestBuffers.append(transfer.onWorker.requestQueue.removeFirst())
                    continue
                }
                switch send(easy, buffer) {
                case .wouldBlock:
                    return
                case .failed(let code):
                    closeTunnel(transfer, .tunnelBroken(curlCode: code, detail: easy.errorText(fallback: code)))
                    return
                case .wrote(let n):
                    if n == buffer.readableBytes {
                        transfer.onWorker.spentRequestBuffers.append(transfer.onWorker.requestQueue.removeFirst())
                    } else {
                        transfer.onWorker.requestQueue[transfer.onWorker.requestQueue.startIndex]
                            .moveReaderIndex(forwardBy: n)
                    }
                    transfer.onWorker.consumedAccumulator += n
                    noteActivity(transfer)
                    markDirty(transfer)
                }
            }
            if transfer.onWorker.requestEnded && !tunnel.writeShut {
                // The client is done sending: so is the tunnel, towards the upstream (a TCP FIN).
                transfer.onWorker.tunnel?.writeShut = true
                #if os(Linux)
                    _ = ccurl_shutdown_write(tunnel.fd)
                #endif
            }
        case .connecting, .readingHead, .body:
            break
        }
    }

    // MARK: Reading

    /// Reads until the socket is empty (`CURLE_AGAIN`), the credit is spent or the tunnel ends.
    private func tunnelRead(_ transfer: CurlTransfer) {
        if tunnelReadBuffer == nil {
            tunnelReadBuffer = .allocate(byteCount: Self.receiveBufferSize, alignment: 16)
        }
        guard let buffer = tunnelReadBuffer else { return }
        while transfer.onWorker.inMulti, let easy = transfer.onWorker.easy, let tunnel = transfer.onWorker.tunnel {
            switch tunnel.phase {
            case .connecting, .sendingHandshake:
                return
            case .open, .body:
                // The same credit as a response body's: stop reading (and so take the socket out of
                // the epoll set) until the EventLoop posts `resumeReceive`.
                if transfer.receiveCreditSpent {
                    if !transfer.onWorker.receivePaused { noteReceivePaused(transfer) }
                    return
                }
            case .readingHead:
                break
            }
            var count = 0
            let code = curl_easy_recv(easy.raw, buffer.baseAddress, buffer.count, &count)
            if code == CURLE_AGAIN { return }
            guard code.isOK else {
                closeTunnel(transfer, .tunnelBroken(curlCode: code, detail: easy.errorText(fallback: code)))
                return
            }
            noteActivity(transfer)
            if count == 0 {
                upstreamClosed(transfer)
                return
            }
            received(transfer, UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
    }

    /// Bytes from the upstream, in the tunnel's current phase.
    private func received(_ transfer: CurlTransfer, _ bytes: UnsafeRawBufferPointer) {
        var rest = bytes
        while !rest.isEmpty, transfer.onWorker.inMulti, let tunnel = transfer.onWorker.tunnel {
            switch tunnel.phase {
            case .connecting, .sendingHandshake:
                return
            case .readingHead:
                let used = readHead(transfer, rest)
                rest = UnsafeRawBufferPointer(rebasing: rest[used...])
            case .open, .body(.untilClose):
                takeBody(transfer, rest)
                return
            case .body(.length(let remaining)):
                let n = Int(min(UInt64(rest.count), remaining))
                takeBody(transfer, UnsafeRawBufferPointer(rebasing: rest[0..<n]))
                if remaining == UInt64(n) {
                    finishTunnel(transfer)
                } else {
                    transfer.onWorker.tunnel?.phase = .body(.length(remaining: remaining - UInt64(n)))
                }
                return
            case .body(.chunked(var decoder)):
                do {
                    _ = try decoder.feed(rest) { takeBody(transfer, $0) }
                } catch {
                    closeTunnel(
                        transfer,
                        UpstreamError(kind: .reset, curlCode: 0, detail: "the upstream's chunked body is malformed"))
                    return
                }
                if decoder.isComplete {
                    finishTunnel(transfer)
                } else {
                    transfer.onWorker.tunnel?.phase = .body(.chunked(decoder))
                }
                return
            }
        }
    }

    /// Feeds head lines to the parser; returns how many bytes of `bytes` the head took.
    private func readHead(_ transfer: CurlTransfer, _ bytes: UnsafeRawBufferPointer) -> Int {
        var index = 0
        while index < bytes.count {
            let newline = bytes[index...].firstIndex(of: UInt8(ascii: "\n"))
            let end = newline.map { $0 + 1 } ?? bytes.count
            transfer.onWorker.tunnel?.headLine.append(contentsOf: bytes[index..<end])
            transfer.onWorker.tunnel?.headBytes += end - index
            index = end
            if (transfer.onWorker.tunnel?.headBytes ?? 0) > TunnelState.maxHeadBytes {
                closeTunnel(
                    transfer,
                    UpstreamError(
                        kind: .reset, curlCode: 0,
                        detail: "the upstream's answer head is over \(TunnelState.maxHeadBytes) bytes"))
                return bytes.count
            }
            guard newline != nil, var tunnel = transfer.onWorker.tunnel else { break }
            transfer.onWorker.tunnel = nil  // keeps `tunnel` uniquely referenced while it is fed
            let complete = tunnel.headLine.withUnsafeBytes { tunnel.head.feed($0) }
            tunnel.headLine.removeAll(keepingCapacity: true)
            transfer.onWorker.tunnel = tunnel
            if complete {
                headArrived(transfer)
                break
            }
        }
        return index
    }

    /// The answer's head is complete: pass it on and decide what the connection carries next.
    private func headArrived(_ transfer: CurlTransfer) {
        guard let head = transfer.onWorker.tunnel?.head else { return }
        let status = head.status ?? 0
        transfer.onWorker.headDelivered = true
        transfer.append(.event(.head(status: status, reason: head.reason, headers: head.headers)))
        markDirty(transfer)
        transfer.onWorker.tunnel?.headLine = []
        if status == 101 {
            transfer.onWorker.tunnel?.phase = .open
            tunnelWrite(transfer)  // client bytes that came before the 101
            return
        }
        // The client's bytes never reach an upstream that did not switch protocols: they are
        // dropped (and reported consumed, so the server keeps reading the client).
        transfer.onWorker.discardsRequestBody = true
        while let buffer = transfer.onWorker.requestQueue.popFirst() {
            transfer.onWorker.consumedAccumulator += buffer.readableBytes
            transfer.onWorker.spentRequestBuffers.append(buffer)
        }
        switch Self.bodyFraming(status: status, headers: head.headers) {
        case nil:
            closeTunnel(
                transfer,
                UpstreamError(kind: .reset, curlCode: 0, detail: "the upstream sent an invalid Content-Length"))
        case .length(remaining: 0):
            finishTunnel(transfer)
        case let framing?:
            transfer.onWorker.tunnel?.phase = .body(framing)
        }
    }

    /// How the body of a non-`101` answer ends (RFC 9112 §6.3); nil for an invalid `Content-Length`.
    static func bodyFraming(status: Int, headers: [HeaderField]) -> TunnelState.BodyFraming? {
        if status == 204 || status == 304 || (100...199).contains(status) { return .length(remaining: 0) }
        var codings: [Substring] = []
        var lengths: [Substring] = []
        for field in headers {
            if ASCII.equalsLowercase(field.name.utf8, "transfer-encoding") {
                codings += field.value.split(separator: ",")
            } else if ASCII.equalsLowercase(field.name.utf8, "content-length") {
                lengths += field.value.split(separator: ",", omittingEmptySubsequences: false)
            }
        }
        if let last = codings.last {
            // Not chunked last: the body runs to the close.
            return ASCII.equalsLowercase(last.trimmingSpaces.utf8, "chunked") ? .chunked(ChunkedDecoder()) : .untilClose
        }
        guard let first = lengths.first else { return .untilClose }
        let value = first.trimmingSpaces
        guard !value.isEmpty, value.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let length = UInt64(value),
            lengths.allSatisfy({ $0.trimmingSpaces == value })
        else { return nil }
        return .length(remaining: length)
    }

    /// The upstream closed its side (`curl_easy_recv` read 0 bytes).
    private func upstreamClosed(_ transfer: CurlTransfer) {
        switch transfer.onWorker.tunnel?.phase {
        case .open?, .body(.untilClose)?:
            finishTunnel(transfer)
        case .readingHead?:
            closeTunnel(
                transfer,
                UpstreamError(
                    kind: .reset, curlCode: 0,
                    detail: "the upstream closed the connection before answering the handshake"))
        default:
            closeTunnel(
                transfer,
                UpstreamError(kind: .reset, curlCode: 0, detail: "the upstream closed the connection mid-body"))
        }
    }

    // MARK: The end

    /// The tunnel (or the non-`101` answer) is complete: `.end`, and the connection is closed.
    private func finishTunnel(_ transfer: CurlTransfer) {
        remove(transfer, forbidReuse: true)
        transfer.append(.event(.end))
        markDirty(transfer)
    }

    private func closeTunnel(_ transfer: CurlTransfer, _ error: UpstreamError) {
        remove(transfer, forbidReuse: true)
        fail(transfer, error)
    }

    /// After the handle left the multi (which closed the connection): the handle and the share go.
    func releaseTunnel(_ transfer: CurlTransfer) {
        guard let tunnel = transfer.onWorker.tunnel else { return }
        if tunnel.fd >= 0, tunnelsByFD[tunnel.fd] === transfer { tunnelsByFD[tunnel.fd] = nil }
        // The easy handle is already destroyed (`releaseResources`): nothing uses the share now.
        if let share = tunnel.share { curl_share_cleanup(share) }
        transfer.onWorker.tunnel?.share = nil
        transfer.onWorker.tunnel?.fd = -1
    }

    /// Sets the socket's epoll interest from the tunnel's phase, credit and queue.
    private func updateTunnelInterest(_ transfer: CurlTransfer) {
        #if os(Linux)
            guard transfer.onWorker.inMulti, let tunnel = transfer.onWorker.tunnel, tunnel.fd >= 0, let poller
            else { return }
            var mask: UInt32 = 0
            switch tunnel.phase {
            case .connecting:
                return
            case .sendingHandshake:
                mask = ccurl_epollout
            case .readingHead:
                mask = ccurl_epollin
            case .open:
                if !transfer.onWorker.receivePaused { mask |= ccurl_epollin }
                if !transfer.onWorker.requestQueue.isEmpty { mask |= ccurl_epollout }
            case .body:
                if !transfer.onWorker.receivePaused { mask = ccurl_epollin }
            }
            guard mask != tunnel.interest else { return }
            if poller.setTunnelInterest(tunnel.fd, mask) {
                transfer.onWorker.tunnel?.interest = mask
            } else {
                closeTunnel(
                    transfer, UpstreamError(kind: .reset, curlCode: 0, detail: "epoll refused the tunnel's socket"))
            }
        #endif
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    fileprivate var trimmingSpaces: Substring {
        var s = self
        while let first = s.first, first == " " || first == "\t" { s.removeFirst() }
        while let last = s.last, last == " " || last == "\t" { s.removeLast() }
        return s
    }
}
