#if os(Linux)
    import CCurl
    import Glibc

    /// What the worker waits on (Linux): an epoll set holding the sockets curl asks for
    /// (`CURLMOPT_SOCKETFUNCTION`) and an eventfd that `post` writes to wake the worker.
    /// Only the ready sockets go to `curl_multi_socket_action`, so a turn costs one
    /// `epoll_wait`, not a poll of every socket plus `curl_multi_perform` over every transfer.
    ///
    /// Connection sockets stay in the epoll set while curl does not want them (idle in the
    /// connection cache, or between two transfers on one connection): removing and re-adding
    /// them per exchange would cost two `epoll_ctl` per request. Such a socket is removed when
    /// it reports an event nobody wants (the upstream closed it), and is forgotten when curl
    /// closes it (`CURLOPT_CLOSESOCKETFUNCTION`; we learn of it from `CURLOPT_SOCKOPTFUNCTION`).
    /// Sockets curl closes without that callback (the resolver's) are removed eagerly.
    ///
    /// A WebSocket tunnel's socket is made by curl and then handed to the worker
    /// (`setTunnelInterest`): its readiness goes to the tunnel, not to curl, and it is out of
    /// the set whenever the tunnel wants nothing (so a hang-up cannot spin the wait).
    ///
    /// `@unchecked Sendable`: `wake()` uses only the `let` eventfd; everything else is
    /// confined to the worker thread (or the thread tearing the worker down).
    final class CurlSocketPoller: @unchecked Sendable {
        private struct SocketState {
            /// The epoll mask the kernel holds for this fd; 0 = not in the set.
            var registered: UInt32 = 0
            /// What curl wants now; 0 = nothing (`CURL_POLL_REMOVE`).
            var wanted: UInt32 = 0
            /// A connection socket: curl closes it through `closed(_:)`.
            var owned = false
            /// A tunnel's socket: the worker reads and writes it, curl no longer wants it.
            var tunnel = false
        }

        static let maxEvents = 64

        let epoll: Int32
        let wakeFD: Int32
        private var sockets: [SocketState] = []
        private var readyFDs = [Int32](repeating: 0, count: maxEvents)
        private var readyEvents = [UInt32](repeating: 0, count: maxEvents)

        /// Nil when the kernel refused an epoll fd or an eventfd (the worker then fails every transfer).
        init?() {
            let epoll = ccurl_epoll_create()
            let wakeFD = ccurl_eventfd()
            guard epoll >= 0, wakeFD >= 0, ccurl_epoll_set(epoll, wakeFD, ccurl_epollin, 0) == 0 else {
                if epoll >= 0 { Glibc.close(epoll) }
                if wakeFD >= 0 { Glibc.close(wakeFD) }
                return nil
            }
            self.epoll = epoll
            self.wakeFD = wakeFD
        }

        /// Closes both descriptors; call once, after `curl_multi_cleanup` (which may still close sockets).
        func close() {
            Glibc.close(epoll)
            Glibc.close(wakeFD)
        }

        /// Any thread: makes the next (or current) `wait` return.
        func wake() {
            var one: UInt64 = 1
            _ = Glibc.write(wakeFD, &one, 8)
        }

        // MARK: curl's side (worker thread, inside curl calls)

        /// `CURLMOPT_SOCKETFUNCTION`: curl wants `what` (`CURL_POLL_*`) on `fd`.
        func update(_ fd: Int32, what: Int32) {
            guard fd >= 0 else { return }
            let index = Int(fd)
            if index >= sockets.count {
                sockets.append(contentsOf: repeatElement(SocketState(), count: index + 1 - sockets.count))
            }
            if sockets[index].tunnel { return }
            if what == CURL_POLL_REMOVE {
                sockets[index].wanted = 0
                if !sockets[index].owned && sockets[index].registered != 0 {
                    _ = ccurl_epoll_del(epoll, fd)
                    sockets[index].registered = 0
                }
                return
            }
            var mask: UInt32 = 0
            if what & CURL_POLL_IN != 0 { mask |= ccurl_epollin }
            if what & CURL_POLL_OUT != 0 { mask |= ccurl_epollout }
            sockets[index].wanted = mask
            if sockets[index].registered == mask { return }
            if ccurl_epoll_set(epoll, fd, mask, sockets[index].registered != 0 ? 1 : 0) == 0 {
                sockets[index].registered = mask
            }
        }

        /// Hands `fd` (a socket of a connection curl made) to a tunnel, or changes what the tunnel
        /// waits for: `mask` is `EPOLLIN`/`EPOLLOUT`; 0 takes it out of the set. False when the
        /// kernel refused the change.
        func setTunnelInterest(_ fd: Int32, _ mask: UInt32) -> Bool {
            guard fd >= 0 else { return false }
            let index = Int(fd)
            if index >= sockets.count {
                sockets.append(contentsOf: repeatElement(SocketState(), count: index + 1 - sockets.count))
            }
            sockets[index].tunnel = true
            sockets[index].wanted = mask
            if sockets[index].registered == mask { return true }
            if mask == 0 {
                _ = ccurl_epoll_del(epoll, fd)
                sockets[index].registered = 0
                return true
            }
            guard ccurl_epoll_set(epoll, fd, mask, sockets[index].registered != 0 ? 1 : 0) == 0 else { return false }
            sockets[index].registered = mask
            return true
        }

        /// `CURLOPT_SOCKOPTFUNCTION`: curl opened a connection socket.
        func opened(_ fd: Int32) {
            guard fd >= 0 else { return }
            let index = Int(fd)
            if index >= sockets.count {
                sockets.append(contentsOf: repeatElement(SocketState(), count: index + 1 - sockets.count))
            }
            sockets[index] = SocketState(registered: 0, wanted: 0, owned: true)
        }

        /// `CURLOPT_CLOSESOCKETFUNCTION`: forget `fd`, then close it.
        func closed(_ fd: Int32) -> Int32 {
            let index = Int(fd)
            if fd >= 0, index < sockets.count {
                if sockets[index].registered != 0 { _ = ccurl_epoll_del(epoll, fd) }
                sockets[index] = SocketState()
            }
            return Glibc.close(fd)
        }

        // MARK: The worker's side

        /// Waits up to `timeoutMilliseconds` (-1: forever); calls `curl(fd, CURL_CSELECT_*)` for each
        /// socket curl wants and `tunnel(fd, EPOLL* events)` for each tunnel socket (which returns
        /// false when no tunnel has it any more). Wakeups and unwanted sockets are handled here.
        func wait(
            timeoutMilliseconds: Int32, woke: () -> Void, curl ready: (Int32, Int32) -> Void,
            tunnel: (Int32, UInt32) -> Bool
        ) {
            let count = readyFDs.withUnsafeMutableBufferPointer { fds in
                readyEvents.withUnsafeMutableBufferPointer { events in
                    ccurl_epoll_wait(
                        epoll, fds.baseAddress, events.baseAddress, Int32(Self.maxEvents), timeoutMilliseconds)
                }
            }
            woke()
            guard count > 0 else { return }
            for i in 0..<Int(count) {
                let fd = readyFDs[i]
                let events = readyEvents[i]
                if fd == wakeFD {
                    var value: UInt64 = 0
                    _ = Glibc.read(wakeFD, &value, 8)
                    continue
                }
                // curl may have closed or stopped wanting it during an earlier action of this batch.
                let index = Int(fd)
                guard index < sockets.count, sockets[index].registered != 0 else { continue }
                if sockets[index].tunnel {
                    if !tunnel(fd, events), index < sockets.count, sockets[index].registered != 0 {
                        _ = ccurl_epoll_del(epoll, fd)
                        sockets[index].registered = 0
                    }
                    continue
                }
                if sockets[index].wanted == 0 {
                    _ = ccurl_epoll_del(epoll, fd)
                    sockets[index].registered = 0
                    continue
                }
                var action: Int32 = 0
                if events & (ccurl_epollin | ccurl_epollhup) != 0 { action |= CURL_CSELECT_IN }
                if events & ccurl_epollout != 0 { action |= CURL_CSELECT_OUT }
                if events & ccurl_epollerr != 0 { action |= CURL_CSELECT_ERR }
                ready(fd, action)
            }
        }
    }

    // curl's C callbacks for the poller; the context is the poller, unretained (the worker owns it).
    func curlSocketCallback(
        _ easy: UnsafeMutableRawPointer?, _ fd: curl_socket_t, _ what: Int32, _ context: UnsafeMutableRawPointer?,
        _ socketContext: UnsafeMutableRawPointer?
    ) -> Int32 {
        guard let context else { return 0 }
        // Guaranteed, not taken: no retain/release per call (the worker owns the poller).
        Unmanaged<CurlSocketPoller>.fromOpaque(context)._withUnsafeGuaranteedRef { $0.update(fd, what: what) }
        return 0
    }

    func curlSockoptCallback(_ context: UnsafeMutableRawPointer?, _ fd: curl_socket_t, _ purpose: curlsocktype) -> Int32
    {
        if let context { Unmanaged<CurlSocketPoller>.fromOpaque(context).takeUnretainedValue().opened(fd) }
        return Int32(CURL_SOCKOPT_OK)
    }

    func curlCloseSocketCallback(_ context: UnsafeMutableRawPointer?, _ fd: curl_socket_t) -> Int32 {
        guard let context else { return Glibc.close(fd) }
        return Unmanaged<CurlSocketPoller>.fromOpaque(context).takeUnretainedValue().closed(fd)
    }
#endif
