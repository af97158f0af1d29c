import CCurl

/// The worker's idle easy handles, kept for reuse with the options every transfer shares
/// already set (`prepare`): a reused handle needs only the options that differ
/// (`CurlWorker.configure`), never a `curl_easy_reset`. Worker thread only.
struct EasyHandlePool {
    /// Idle handles kept at most; more are destroyed when their transfer ends. As many as the
    /// worker's connection limit, so a steady load reuses every handle it needs: with 64, 512
    /// clients made and destroyed a handle (its `Curl_easy` and the allocations behind its options)
    /// per request, and the churn fragmented the heap to 90 MiB of peak RSS against 45 MiB
    /// (docs/BENCHMARKS.md). curl 7.88 allocates the 128 KiB receive buffer per transfer, not per
    /// handle, so an idle handle is a few KiB.
    static let limit = 1024

    private var idle: [EasyHandle] = []
    private let maxConnectionIdleSeconds: Int
    private let receiveBufferSize: Int
    /// The worker's socket poller, the context of the socket callbacks (Linux); nil elsewhere.
    private let socketContext: UnsafeMutableRawPointer?

    init(maxConnectionIdleSeconds: Int, receiveBufferSize: Int, socketContext: UnsafeMutableRawPointer?) {
        self.maxConnectionIdleSeconds = maxConnectionIdleSeconds
        self.receiveBufferSize = receiveBufferSize
        self.socketContext = socketContext
    }

    /// An idle handle, or a new prepared one; nil when curl cannot make or prepare one.
    mutating func take() -> EasyHandle? {
        if let handle = idle.popLast() { return handle }
        return makeFresh()
    }

    /// A new prepared handle that no transfer has used (a tunnel's: its connection-only and share
    /// options must never reach a pooled handle, nor a pooled handle's leftovers a tunnel).
    func makeFresh() -> EasyHandle? {
        guard let handle = EasyHandle.make() else { return nil }
        guard prepare(handle).isOK else {
            handle.destroy()
            return nil
        }
        return handle
    }

    /// Keeps `handle` for the next transfer, or destroys it when the pool is full or `keep` is false.
    mutating func give(_ handle: EasyHandle, keep: Bool) {
        if keep && idle.count < Self.limit {
            idle.append(handle)
        } else {
            handle.destroy()
        }
    }

    /// Destroys every idle handle (the worker is stopping).
    mutating func destroyAll() {
        for handle in idle { handle.destroy() }
        idle.removeAll()
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
            if let socketContext {
                check(easy.set(.sockopt, curlSockoptCallback))
                check(easy.set(.sockoptData, socketContext))
                check(easy.set(.closeSocket, curlCloseSocketCallback))
                check(easy.set(.closeSocketData, socketContext))
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
        // curl keeps a parsed `ca_file` for 24 h by default: a CA bundle rotated on disk (or
        // changed by a SIGHUP reload under the same path) would be ignored that long. Read it
        // for each new connection instead; pooled connections make that rare. (curl never
        // caches the system store here: it comes with a CA directory.)
        check(easy.set(.caCacheTimeout, 0))
        check(easy.set(.bufferSize, receiveBufferSize))
        return first
    }
}
