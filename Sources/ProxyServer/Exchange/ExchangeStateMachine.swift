import NIOCore
import Upstream

/// The life of a browser-facing HTTP/1.1 connection (a sequence of exchanges) or of one
/// HTTP/2 stream (one exchange), without I/O: events in, one action out.
///
/// The machine decides everything about the flow: whether a head may be parsed, when the
/// client socket may be read (request-body backpressure), how a response is framed,
/// keep-alive, drain, close, lingering close, and every timer. The exchange driver runs
/// its actions through one `run(_:)`; the transports (`HTTP1ConnectionHandler`, the
/// HTTP/2 stream handler) interpret `After.close` for their protocol (close the
/// connection, or end the stream).
///
/// States carry their data, every event is handled in every state, and an event that
/// cannot happen in a state (a request body with no request, an upstream head twice) is
/// a `preconditionFailure` naming both: the driver's guards make them programmer errors.
/// Events the network may deliver late (the client leaving, a timer, a drain) are legal
/// everywhere. The model is async-http-client's `HTTP1ConnectionStateMachine`.
///
/// There is no "answering locally" state: a local answer (preflight, denial, 404, 413,
/// 502, …) is written whole in one step, so the machine never waits inside one. What
/// follows it is `idle` (keep-alive) or `closing` (the connection winds down).
package struct ExchangeStateMachine: Sendable {
    /// Unconsumed request body bytes beyond which the client socket is not read.
    package static let requestBodyHighWater = 64 * 1024
    /// Between requests on a kept-alive connection.
    package static let idleTimeout = TimeAmount.seconds(60)
    /// From the first byte of a request head to its end.
    package static let headTimeout = TimeAmount.seconds(30)
    /// Without a request body byte while the proxy is reading one.
    package static let bodyTimeout = TimeAmount.seconds(60)
    /// Lingering close (after an answer made while the client was still sending): read and
    /// discard for at least `lingerMinimum` while the client keeps sending, until it has
    /// been quiet for `lingerQuiet`, at most `lingerMaximum` and, after the minimum,
    /// `lingerBytes`. Then close: the client has had the time to read the answer, and a
    /// close with unread bytes (which makes the kernel send RST) no longer destroys it.
    package static let lingerMinimum = TimeAmount.seconds(1)
    package static let lingerQuiet = TimeAmount.seconds(1)
    package static let lingerMaximum = TimeAmount.seconds(5)
    package static let lingerBytes = 1 << 20
    /// After shutdown's drain time, how long a tunnel may stay inside a frame before it is cut
    /// without a Close frame.
    package static let goingAwayGrace = TimeAmount.seconds(1)

    /// What the transport knows of a request head. The CORS decision is made outside.
    package struct RequestShape: Sendable, Equatable {
        /// The client allows another request on this connection (HTTP/1.1 semantics;
        /// an HTTP/2 stream passes false: a stream carries one exchange).
        package var keepAlive: Bool
        package var isHead: Bool
        /// An HTTP/1.0 client: a response without a length is delimited by the close.
        package var http10: Bool
        package var body: Body
        package var expectContinue: Bool

        package enum Body: Sendable, Equatable {
            case none
            /// `Content-Length` (or an HTTP/2 `content-length`), > 0.
            case length(Int64)
            /// Chunked (HTTP/1.1) or DATA frames of unknown total (HTTP/2).
            case streamed
        }

        package init(keepAlive: Bool, isHead: Bool, http10: Bool, body: Body, expectContinue: Bool) {
            self.keepAlive = keepAlive
            self.isHead = isHead
            self.http10 = http10
            self.body = body
            self.expectContinue = expectContinue
        }
    }

    /// How the proxy serves a request, as the CORS decision says.
    package enum Plan: Sendable, Equatable {
        /// The proxy answers (preflight, denial, no route, refused upgrade).
        case answerLocally
        /// Forwarded upstream; `bodyLimit` is the route's `max_body_size` (0: none).
        case forward(bodyLimit: Int64)
        /// A WebSocket handshake, forwarded: a `101` opens a tunnel, anything else is an
        /// ordinary response and the connection goes on as HTTP/1.1.
        case tunnel
    }

    /// How the response body is framed for the client.
    package enum ResponseFraming: Sendable, Equatable {
        /// No body (HEAD, 1xx, 204, 304).
        case none
        case length(Int64)
        case chunked
        /// HTTP/1.0 client, no length: the body ends when the connection closes.
        case closeDelimited
    }

    /// What the connection does once a response is complete.
    package enum After: Sendable, Equatable {
        /// Wait for the next request (HTTP/1.1 keep-alive).
        case keepAlive
        /// Close once the response is written (HTTP/2: the stream ends).
        case close
        /// The client may still be sending: write the response, shut down the write side,
        /// read and discard (bounded), then close. Answer `responseFlushed` when written.
        case lingerThenClose
    }

    package enum Action: Sendable, Equatable {
        case none
        /// Write the local answer the driver prepared for this head; then `after`.
        case answer(then: After)
        /// Start the upstream transfer (after `100 Continue` when `sendContinue`).
        case startUpstream(sendContinue: Bool)
        /// Send the WebSocket handshake upstream.
        case startTunnel
        /// The upstream answered the handshake with `101`: write its head as it is; from now
        /// on bytes pass untouched both ways.
        case openTunnel
        /// Shutdown's drain time is over: put a Close frame (1001, going away) at the next frame
        /// boundary of what the upstream sends, then close both sides.
        case sendGoingAway
        /// Pass request body bytes to the transfer.
        case sendBody(ByteBuffer)
        /// The request body is complete.
        case endBody
        /// Write the upstream's response head, framed so; `close`: say `Connection: close`.
        case writeHead(ResponseFraming, close: Bool)
        case writeBody(ByteBuffer)
        /// A body the client must not get (HEAD, 204, 304): return its credit to the transfer.
        case dropBody(Int)
        /// The upstream's response is complete; then `after`.
        case endResponse(then: After)
        /// Answer with a proxy-made error (413, 502, 504, 400, 431), cancelling the
        /// transfer first when `cancelUpstream`; then `after`.
        case respondWithError(status: Int, cancelUpstream: Bool, then: After)
        /// The response cannot be completed honestly: cancel the transfer when
        /// `cancelUpstream` and cut the connection (HTTP/2: reset the stream) so the
        /// client sees an incomplete response. `status` is what the log records.
        case abort(cancelUpstream: Bool, status: Int, reason: AbortReason)
        /// The client went away mid-exchange: cancel the transfer.
        case cancelUpstream
        /// The last response is written and the client has stopped sending: start
        /// discarding (lingering close).
        case startLingering
        /// Close the connection now.
        case close
    }

    /// Why an exchange was cut, for the log.
    package enum AbortReason: String, Sendable, Equatable {
        case bodyOverLimitAfterHead = "request body over max_body_size after the response started"
        case upstreamFailedAfterHead = "upstream failed after the response head"
        case malformedBodyAfterHead = "malformed request body after the response started"
        case clientBodyTimeout = "no request body byte from the client for 60 s"
        case tunnelFailed = "the upstream side of the WebSocket tunnel failed"
        case goingAwayMidFrame = "still inside a WebSocket frame 1 s after shutdown's drain time"
    }

    // MARK: State

    private enum State: Sendable {
        /// Waiting for a request head.
        case idle(Idle)
        /// The exchange is with the upstream.
        case forwarding(Forwarding)
        /// The last response is written or being written; the connection winds down.
        case closing(Closing)
        /// A WebSocket tunnel: bytes both ways until either side closes.
        case tunnelling(Tunnel)
        case closed
    }

    private struct Tunnel: Sendable {
        /// Client bytes passed to the transfer and not yet written upstream.
        var unconsumed = 0
        /// When shutdown asked for a Close frame (going away); nil: not asked.
        var goingAway: NIODeadline?
    }

    private struct Idle: Sendable {
        /// Since when nothing has been asked (idle timeout).
        var since: NIODeadline
        /// When the first byte of the next head arrived (head timeout); nil: none yet.
        var headStarted: NIODeadline?
    }

    private struct Forwarding: Sendable {
        var keepAlive: Bool
        /// A WebSocket handshake: a `101` opens a tunnel.
        var isHandshake = false
        var isHead: Bool
        var http10: Bool
        var request: RequestState
        var response: ResponseState
    }

    private enum RequestState: Sendable {
        /// Body bytes are still arriving from the client.
        case streaming(RequestBody)
        /// Everything the client sends for this request has arrived.
        case complete
    }

    private struct RequestBody: Sendable {
        var received: Int64 = 0
        /// `max_body_size`, inclusive; 0: no limit.
        var limit: Int64
        /// Sent to the transfer and not yet taken by curl.
        var unconsumed = 0
        /// The last body byte, or when reading resumed (body timeout).
        var lastProgress: NIODeadline
    }

    private enum ResponseState: Sendable {
        case waitingForHead
        case streaming(ResponseFraming)
    }

    /// Lingering close: the answer is being written, then what the client still sends is discarded.
    private struct Closing: Sendable {
        /// When the connection started to wind down.
        var entered: NIODeadline
        /// Set once the last response is written and lingering started.
        var lingerStarted: NIODeadline?
        var lastByte: NIODeadline?
        var discarded = 0
    }

    private var state: State

    /// A machine for a new connection (or stream) that is idle since `now`.
    package init(now: NIODeadline) {
        state = .idle(Idle(since: now))
    }

    // MARK: Queries

    /// A new request head may be parsed.
    package var acceptsNewRequest: Bool {
        if case .idle = state { return true }
        return false
    }

    /// The client socket may be read: between requests, while a request body streams under
    /// the high-water mark, or while discarding (lingering close).
    package var shouldRead: Bool {
        switch state {
        case .idle:
            return true
        case .forwarding(let f):
            switch f.request {
            case .streaming(let body): return body.unconsumed < Self.requestBodyHighWater
            case .complete: return true
            }
        case .closing:
            // Discarding: a client that writes its whole body before it reads must not block.
            return true
        case .tunnelling(let t):
            return t.unconsumed < Self.requestBodyHighWater
        case .closed:
            return false
        }
    }

    /// The client's bytes are no longer parsed: they are discarded until the close.
    package var isDiscardingInput: Bool {
        if case .closing = state { return true }
        return false
    }

    /// A forwarded request's body is still arriving (a transport whose body end is implicit,
    /// an HTTP/2 END_STREAM, asks before reporting it).
    package var isReceivingRequestBody: Bool {
        if case .forwarding(let f) = state, case .streaming = f.request { return true }
        return false
    }

    /// A WebSocket tunnel is open: the client's bytes are tunnel data, not HTTP.
    package var isTunnelling: Bool {
        if case .tunnelling = state { return true }
        return false
    }

    package var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// When `timerFired` should next be called; nil: no timer. Read it after every event.
    package var timerDeadline: NIODeadline? {
        switch state {
        case .idle(let idle):
            if let started = idle.headStarted { return started + Self.headTimeout }
            return idle.since + Self.idleTimeout
        case .forwarding(let f):
            // Only while the proxy wants the body: a client held back by backpressure is not slow.
            if case .streaming(let body) = f.request, body.unconsumed < Self.requestBodyHighWater {
                return body.lastProgress + Self.bodyTimeout
            }
            return nil
        case .closing(let c):
            // Until the answer is written, at most the lingering maximum (a client that neither
            // reads nor closes must not hold the connection).
            guard let started = c.lingerStarted else { return c.entered + Self.lingerMaximum }
            // Whichever comes first: the maximum, a quiet client, or (after the minimum) the byte cap.
            var deadline = min(started + Self.lingerMaximum, (c.lastByte ?? started) + Self.lingerQuiet)
            if c.discarded >= Self.lingerBytes { deadline = min(deadline, started + Self.lingerMinimum) }
            return deadline
        case .tunnelling(let t):
            // The tunnel's idle timeout is the upstream client's; only the going-away grace is here.
            return t.goingAway.map { $0 + Self.goingAwayGrace }
        case .closed:
            return nil
        }
    }

    // MARK: Client events

    /// The first bytes of a request head arrived (it is not complete yet).
    package mutating func headStarted(now: NIODeadline) {
        switch state {
        case .idle(var idle):
            if idle.headStarted == nil { idle.headStarted = now }
            state = .idle(idle)
        case .forwarding, .closing, .tunnelling, .closed:
            preconditionFailure("head bytes parsed while not idle: \(state)")
        }
    }

    /// A complete request head arrived and the CORS decision chose `plan`.
    package mutating func receivedHead(_ shape: RequestShape, plan: Plan, now: NIODeadline) -> Action {
        guard case .idle = state else {
            preconditionFailure("a request head was parsed while an exchange was active: \(state)")
        }
        switch plan {
        case .answerLocally:
            // A body that was announced is not read: the answer goes out, then the rest is discarded.
            let after: After = shape.body != .none ? .lingerThenClose : (shape.keepAlive ? .keepAlive : .close)
            enter(after, now: now)
            return .answer(then: after)
        case .forward(let limit):
            if limit > 0, case .length(let declared) = shape.body, declared > limit {
                // Refused on Content-Length before anything is forwarded.
                enter(.lingerThenClose, now: now)
                return .respondWithError(status: 413, cancelUpstream: false, then: .lingerThenClose)
            }
            let request: RequestState =
                shape.body == .none ? .complete : .streaming(RequestBody(limit: limit, lastProgress: now))
            state = .forwarding(
                Forwarding(
                    keepAlive: shape.keepAlive, isHead: shape.isHead, http10: shape.http10, request: request,
                    response: .waitingForHead))
            return .startUpstream(sendContinue: shape.expectContinue && shape.body != .none)
        case .tunnel:
            state = .forwarding(
                Forwarding(
                    keepAlive: shape.keepAlive, isHandshake: true, isHead: false, http10: false, request: .complete,
                    response: .waitingForHead))
            return .startTunnel
        }
    }

    /// A part of the request body arrived from the client.
    package mutating func receivedBody(_ part: ByteBuffer, now: NIODeadline) -> Action {
        guard case .forwarding(var f) = state, case .streaming(var body) = f.request else {
            preconditionFailure("a request body part outside a forwarded request body: \(state)")
        }
        body.received += Int64(part.readableBytes)
        if body.limit > 0 && body.received > body.limit {
            // A streamed body passed the limit: 413 if the response has not started, else cut.
            switch f.response {
            case .waitingForHead:
                enter(.lingerThenClose, now: now)
                return .respondWithError(status: 413, cancelUpstream: true, then: .lingerThenClose)
            case .streaming:
                state = .closed
                return .abort(cancelUpstream: true, status: 413, reason: .bodyOverLimitAfterHead)
            }
        }
        body.unconsumed += part.readableBytes
        body.lastProgress = now
        f.request = .streaming(body)
        state = .forwarding(f)
        return .sendBody(part)
    }

    /// The request body is complete.
    package mutating func receivedEnd() -> Action {
        guard case .forwarding(var f) = state, case .streaming = f.request else {
            preconditionFailure("a request body end outside a forwarded request body: \(state)")
        }
        f.request = .complete
        state = .forwarding(f)
        return .endBody
    }

    /// The request could not be understood (`status` 400 or 431): the driver renders the answer.
    package mutating func receivedMalformed(status: Int, now: NIODeadline) -> Action {
        switch state {
        case .idle:
            enter(.lingerThenClose, now: now)
            return .respondWithError(status: status, cancelUpstream: false, then: .lingerThenClose)
        case .forwarding(let f):
            switch f.response {
            case .waitingForHead:
                enter(.lingerThenClose, now: now)
                return .respondWithError(status: status, cancelUpstream: true, then: .lingerThenClose)
            case .streaming:
                state = .closed
                return .abort(cancelUpstream: true, status: status, reason: .malformedBodyAfterHead)
            }
        case .closing, .tunnelling, .closed:
            preconditionFailure("a request was parsed while the connection winds down or tunnels: \(state)")
        }
    }

    /// Bytes read and discarded while lingering.
    package mutating func discarded(_ count: Int, now: NIODeadline) -> Action {
        guard case .closing(var c) = state else {
            preconditionFailure("bytes discarded while not closing: \(state)")
        }
        c.discarded += count
        c.lastByte = now
        state = .closing(c)
        if let started = c.lingerStarted, c.discarded >= Self.lingerBytes, now >= started + Self.lingerMinimum {
            state = .closed
            return .close
        }
        return .none
    }

    /// The transport wrote the last response of a `lingerThenClose` (its flush completed).
    package mutating func responseFlushed(now: NIODeadline) -> Action {
        switch state {
        case .closing(var c) where c.lingerStarted == nil:
            c.lingerStarted = now
            state = .closing(c)
            return .startLingering
        case .closed:
            // The client left before the write completed.
            return .none
        case .idle, .forwarding, .closing, .tunnelling:
            preconditionFailure("a response flush reported while not closing: \(state)")
        }
    }

    /// The client connection (or stream) is gone.
    package mutating func clientClosed() -> Action {
        switch state {
        case .forwarding, .tunnelling:
            state = .closed
            return .cancelUpstream
        case .idle, .closing:
            state = .closed
            return .none
        case .closed:
            return .none
        }
    }

    // MARK: Upstream events

    /// curl took `count` request body bytes.
    package mutating func bodyConsumed(_ count: Int, now: NIODeadline) {
        if case .tunnelling(var t) = state {
            t.unconsumed = max(0, t.unconsumed - count)
            state = .tunnelling(t)
            return
        }
        guard case .forwarding(var f) = state, case .streaming(var body) = f.request else { return }
        let wasHeldBack = body.unconsumed >= Self.requestBodyHighWater
        body.unconsumed = max(0, body.unconsumed - count)
        // Reading resumes: the body timeout counts from now, not from the last byte before the pause.
        if wasHeldBack && body.unconsumed < Self.requestBodyHighWater { body.lastProgress = now }
        f.request = .streaming(body)
        state = .forwarding(f)
    }

    /// The upstream's response head arrived.
    package mutating func upstreamHead(status: Int, contentLength: Int64?) -> Action {
        guard case .forwarding(var f) = state, case .waitingForHead = f.response else {
            preconditionFailure("an upstream head outside a forwarded request waiting for one: \(state)")
        }
        if f.isHandshake && status == 101 {
            state = .tunnelling(Tunnel())
            return .openTunnel
        }
        let framing: ResponseFraming
        if f.isHead || Self.statusForbidsBody(status) {
            framing = .none
        } else if let contentLength {
            framing = .length(contentLength)
        } else if f.http10 {
            framing = .closeDelimited
            f.keepAlive = false
        } else {
            framing = .chunked
        }
        f.response = .streaming(framing)
        state = .forwarding(f)
        return .writeHead(framing, close: !f.keepAlive)
    }

    /// A part of the upstream's response body.
    package mutating func upstreamBody(_ part: ByteBuffer) -> Action {
        if case .tunnelling = state { return .writeBody(part) }
        guard case .forwarding(let f) = state, case .streaming(let framing) = f.response else {
            preconditionFailure("an upstream body part before its head: \(state)")
        }
        return framing == .none ? .dropBody(part.readableBytes) : .writeBody(part)
    }

    /// The upstream's response is complete.
    package mutating func upstreamEnd(now: NIODeadline) -> Action {
        if case .tunnelling = state {
            // The upstream closed the tunnel: the client's side closes too.
            state = .closed
            return .endResponse(then: .close)
        }
        guard case .forwarding(let f) = state, case .streaming = f.response else {
            preconditionFailure("an upstream end before its head: \(state)")
        }
        let after: After
        switch f.request {
        case .streaming:
            // The upstream answered before the whole body arrived: what the client still
            // sends is discarded, then the connection closes.
            after = .lingerThenClose
        case .complete:
            after = f.keepAlive ? .keepAlive : .close
        }
        enter(after, now: now)
        return .endResponse(then: after)
    }

    /// The upstream exchange failed (no further upstream event follows).
    package mutating func upstreamFailed(_ kind: UpstreamError.Kind, now: NIODeadline) -> Action {
        if case .tunnelling = state {
            state = .closed
            return .abort(cancelUpstream: false, status: 101, reason: .tunnelFailed)
        }
        guard case .forwarding(let f) = state else {
            preconditionFailure("an upstream failure outside a forwarded request: \(state)")
        }
        switch f.response {
        case .waitingForHead:
            let status = kind == .timeout ? 504 : 502
            let after: After
            switch f.request {
            case .streaming: after = .lingerThenClose
            case .complete: after = f.keepAlive ? .keepAlive : .close
            }
            enter(after, now: now)
            return .respondWithError(status: status, cancelUpstream: false, then: after)
        case .streaming:
            // Never a complete-looking response after an upstream failure.
            state = .closed
            return .abort(cancelUpstream: false, status: 502, reason: .upstreamFailedAfterHead)
        }
    }

    // MARK: Connection events

    /// Shutdown started: close now when idle, else after this exchange (with `Connection: close`).
    package mutating func drain() -> Action {
        switch state {
        case .idle:
            state = .closed
            return .close
        case .forwarding(var f):
            f.keepAlive = false
            state = .forwarding(f)
            return .none
        case .closing, .tunnelling, .closed:
            // A tunnel gets the whole drain time to end by itself (`goingAway` comes after it).
            return .none
        }
    }

    /// A client's bytes through an open tunnel.
    package mutating func receivedTunnelData(_ part: ByteBuffer) -> Action {
        guard case .tunnelling(var t) = state else {
            preconditionFailure("tunnel data while no tunnel is open: \(state)")
        }
        t.unconsumed += part.readableBytes
        state = .tunnelling(t)
        return .sendBody(part)
    }

    /// Shutdown's drain time is over: a tunnel still open is told the server is going away.
    package mutating func goingAway(now: NIODeadline) -> Action {
        guard case .tunnelling(var t) = state, t.goingAway == nil else { return .none }
        t.goingAway = now
        state = .tunnelling(t)
        return .sendGoingAway
    }

    /// The deadline from `timerDeadline` passed (or a stale timer fired: then nothing happens).
    package mutating func timerFired(now: NIODeadline) -> Action {
        guard let deadline = timerDeadline, now >= deadline else { return .none }
        switch state {
        case .idle:
            state = .closed
            return .close
        case .forwarding(let f):
            // The client stopped sending its body: give up on the exchange, with a 408 when
            // the response has not started.
            state = .closed
            if case .waitingForHead = f.response {
                return .respondWithError(status: 408, cancelUpstream: true, then: .close)
            }
            return .abort(cancelUpstream: true, status: 408, reason: .clientBodyTimeout)
        case .closing:
            state = .closed
            return .close
        case .tunnelling:
            // Still inside a frame a second after going away: cut without a Close frame.
            state = .closed
            return .abort(cancelUpstream: true, status: 101, reason: .goingAwayMidFrame)
        case .closed:
            return .none
        }
    }

    // MARK: Helpers

    /// The state after a response whose continuation is `after`.
    private mutating func enter(_ after: After, now: NIODeadline) {
        switch after {
        case .keepAlive: state = .idle(Idle(since: now))
        case .close: state = .closed
        case .lingerThenClose: state = .closing(Closing(entered: now))
        }
    }

    /// A status with no body section at all: 1xx, 204 and 304.
    package static func statusForbidsBody(_ status: Int) -> Bool {
        status == 204 || status == 304 || (100..<200).contains(status)
    }
}

extension ExchangeStateMachine: CustomStringConvertible {
    package var description: String { "\(state)" }
}
