import CORSPolicy
import HeaderFields
import Logging
import NIOCore
import Upstream

/// Runs the exchanges of one HTTP/1.1 connection, or the one exchange of an HTTP/2 stream,
/// whatever the protocol: fed request heads, body parts and ends by its transport, it looks
/// up the route, asks the conf for the CORS decision, answers locally or streams the exchange
/// through the upstream transport, and writes the response back through `ExchangeTransport`.
///
/// Every decision about flow (keep-alive, backpressure, framing, 413/502/504 versus a cut,
/// drain, lingering close, timers) is the `ExchangeStateMachine`'s; the driver feeds it
/// events and runs each action it returns in `run(_:)`. Confined to the transport's event loop.
package final class ExchangeDriver<Transport: ExchangeTransport> {
    private let server: ServerContext
    private unowned let transport: Transport
    private let eventLoop: any EventLoop
    private var machine: ExchangeStateMachine
    private var exchange: ExchangeRecord?
    private var transfer: (any UpstreamTransfer)?
    /// Bumped whenever a transfer is started or dropped: events of an older one are ignored.
    private var generation = 0
    private var timer: ConnectionTimer
    /// Where the upstream's frames end in an open WebSocket tunnel (for the Close at shutdown).
    private var frames = WebSocketFrameBoundary()
    /// The Close frame (1001) waits for the current frame to end.
    private var closeAtBoundary = false
    /// The open tunnel's route, nil when no tunnel is open (an open one is counted in
    /// `cors_proxy_websocket_tunnels` until it closes): its exchange record ends with the
    /// handshake, and a failure of the tunnel is still logged and counted under its route.
    private var tunnelRoute: ServingRoute?
    private var tunnelOpen: Bool { tunnelRoute != nil }

    package init(server: ServerContext, transport: Transport) {
        self.server = server
        self.transport = transport
        self.eventLoop = transport.eventLoop
        self.machine = ExchangeStateMachine(now: transport.eventLoop.now)
        self.timer = ConnectionTimer()
        syncTimer()
    }

    // MARK: Queries for the transport

    /// A new request head may be parsed (pipelined requests wait for this).
    package var acceptsNewRequest: Bool { machine.acceptsNewRequest }
    /// The client socket may be read (request-body backpressure, lingering).
    package var shouldRead: Bool { machine.shouldRead }
    /// What the client sends now is discarded unparsed (lingering close).
    package var isDiscardingInput: Bool { machine.isDiscardingInput }
    package var isClosed: Bool { machine.isClosed }
    /// A WebSocket tunnel is open: what the client sends is tunnel data.
    package var isTunnelling: Bool { machine.isTunnelling }
    /// A forwarded request's body is still arriving.
    package var isReceivingRequestBody: Bool { machine.isReceivingRequestBody }

    // MARK: Events from the transport

    /// The first bytes of a request head arrived.
    package func headStarted() {
        machine.headStarted(now: eventLoop.now)
        syncTimer()
    }

    /// A complete request head.
    package func receivedHead(_ head: RequestHead) {
        let config = server.config
        let route = config.route(for: head.path)
        let facts = RequestFacts(head, scheme: transport.scheme)
        let shape = head.shape
        let now = eventLoop.now

        // An allowed preflight this route answered before: its response is already rendered.
        var preflightKey: PreflightResponseCache.Key?
        if let route, route.policy != nil, head.method == "OPTIONS", let requestMethod = facts.requestMethod,
            shape.keepAlive, shape.body == .none
        {
            let key = PreflightResponseCache.Key(facts, requestMethod: requestMethod)
            if let cached = route.preflightResponses.entry(for: key) {
                begin(
                    route: route, config: config, decision: cached.decision, kind: .preflight, facts: facts, head: head)
                let action = machine.receivedHead(shape, plan: .answerLocally, now: now)
                precondition(
                    action == .answer(then: .keepAlive), "a cached preflight must stay on a kept-alive connection")
                exchange?.bytesOut += Int64(transport.writeCachedResponse(cached))
                finish(status: cached.status, note: nil)
                syncTimer()
                return
            }
            preflightKey = key
        }

        if head.isWebSocketHandshake {
            receivedHandshake(head, route: route, config: config, facts: facts, now: now)
            return
        }
        let decision = config.decide(facts, route: route)
        let kind: RequestKind =
            if case .preflight = decision { .preflight } else {
                head.method == "OPTIONS" && facts.requestMethod != nil ? .preflight : .actual
            }
        begin(route: route, config: config, decision: decision, kind: kind, facts: facts, head: head)

        let local: LocalResponse?
        switch decision {
        case .preflight(let status, let headers):
            local = LocalResponse(status: status, headers: headers, body: nil)
        case .deny(let status, let headers, _):
            local = .denial(status: status, headers: headers, path: head.path)
        case .forward where head.isUpgrade:
            // Upgrades (WebSocket) are not proxied: 501, nothing forwarded.
            local = LocalResponse(
                status: 501, headers: decision.proxyMadeResponseHeaders, body: "upgrade requests are not supported\n")
        case .forward, .passThrough:
            local = nil
        }
        guard let local else {
            run(machine.receivedHead(shape, plan: .forward(bodyLimit: route?.maxBodySize ?? 0), now: now), head: head)
            return
        }
        let (after, rendering) = answerLocally(local, shape: shape, omitBody: head.method == "HEAD", now: now)
        if let preflightKey, let route, after == .keepAlive, case .preflight = decision {
            route.preflightResponses.store(
                .init(status: local.status, decision: decision, response: rendering), for: preflightKey)
        }
    }

    /// Writes a response the proxy makes itself to the head just decided and ends its exchange.
    /// Returns what follows it and the rendering, when the transport can replay it byte for
    /// byte (HTTP/1.1; what the preflight cache keeps beside the decision).
    @discardableResult
    private func answerLocally(
        _ local: LocalResponse, shape: ExchangeStateMachine.RequestShape, omitBody: Bool, now: NIODeadline
    ) -> (after: ExchangeStateMachine.After, rendering: ByteBuffer?) {
        let action = machine.receivedHead(shape, plan: .answerLocally, now: now)
        guard case .answer(let after) = action else { preconditionFailure("a local answer became \(action)") }
        let written = transport.writeLocalResponse(
            status: local.status, headers: local.headers, body: local.body, omitBody: omitBody, after: after)
        exchange?.bytesOut += Int64(written.bytes)
        finish(status: local.status, note: nil)
        syncTimer()
        return (after, written.rendering)
    }

    /// A WebSocket handshake: the origin is checked with the route's rules (browsers make no
    /// CORS check on WebSocket; this check is what stops cross-site WebSocket hijacking), then it
    /// is tunnelled, refused, or answered 501 where WebSocket is off.
    private func receivedHandshake(
        _ head: RequestHead, route: ServingRoute?, config: ServingConfig, facts: RequestFacts, now: NIODeadline
    ) {
        let decision = config.decideWebSocket(facts, route: route)
        begin(route: route, config: config, decision: decision, kind: .websocket, facts: facts, head: head)
        let local: LocalResponse?
        switch decision {
        case .deny(let status, let headers, _):
            local = .denial(status: status, headers: headers, path: head.path)
        case .forward where route?.refusesWebSocket == true:
            local = LocalResponse(
                status: 501, headers: decision.proxyMadeResponseHeaders,
                body: "WebSocket is off for this route (websocket off)\n")
        case .forward, .passThrough:
            local = nil
        case .preflight:
            preconditionFailure("a WebSocket handshake decided as a preflight")
        }
        guard let local else {
            run(machine.receivedHead(head.shape, plan: .tunnel, now: now), head: head)
            return
        }
        answerLocally(local, shape: head.shape, omitBody: false, now: now)
    }

    /// Bytes from the client through an open tunnel.
    package func receivedTunnelData(_ part: ByteBuffer) {
        run(machine.receivedTunnelData(part))
    }

    /// Shutdown's drain time is over: an open tunnel gets a Close frame (1001) at the next
    /// frame boundary, then both sides close.
    package func goingAway() {
        run(machine.goingAway(now: eventLoop.now))
    }

    /// A part of the request body.
    package func receivedBody(_ part: ByteBuffer) {
        exchange?.bytesIn += Int64(part.readableBytes)
        run(machine.receivedBody(part, now: eventLoop.now))
    }

    /// The request body is complete.
    package func receivedEnd() {
        run(machine.receivedEnd())
    }

    /// The request could not be parsed. `salvaged`: what could be read of its head, so the
    /// answer carries the CORS headers a success would have had for that origin.
    package func receivedMalformed(_ error: HTTPParseError, salvaged: RequestHead?) {
        if exchange == nil && salvaged == nil {
            // Not even a request line to log it by: a line of its own.
            server.logger.info(
                "malformed request",
                metadata: ["event": "malformed", "http.status": "\(error.status)", "cors.detail": "\(error.detail)"])
        }
        if exchange == nil, let head = salvaged {
            let config = server.config
            let route = config.route(for: head.path)
            let facts = RequestFacts(head, scheme: transport.scheme)
            begin(
                route: route, config: config, decision: config.decide(facts, route: route), kind: .actual,
                facts: facts, head: head)
        }
        exchange?.note = error.detail
        run(machine.receivedMalformed(status: error.status, now: eventLoop.now))
    }

    /// Bytes read and dropped while lingering.
    package func discarded(_ count: Int) {
        run(machine.discarded(count, now: eventLoop.now))
    }

    /// The last response of a lingering close is written.
    package func responseFlushed() {
        run(machine.responseFlushed(now: eventLoop.now))
    }

    /// The client connection or stream is gone.
    package func clientClosed() {
        run(machine.clientClosed())
        tunnelClosed()
        timer.cancel()
    }

    /// The client's writability changed.
    package func writabilityChanged(_ writable: Bool) {
        transfer?.setClientWritable(writable)
    }

    /// Shutdown started.
    package func drain() {
        run(machine.drain())
    }

    // MARK: Running actions

    private func run(_ action: ExchangeStateMachine.Action, head: RequestHead? = nil) {
        switch action {
        case .none:
            break
        case .answer:
            preconditionFailure("local answers are written where the head is decided")
        case .startUpstream(let sendContinue):
            guard let head else { preconditionFailure("an upstream start without its request head") }
            startUpstream(head, sendContinue: sendContinue)
        case .startTunnel:
            guard let head else { preconditionFailure("a tunnel start without its handshake") }
            startTunnel(head)
        case .openTunnel:
            preconditionFailure("a tunnel is opened where the upstream head arrives")
        case .sendGoingAway:
            closeAtBoundary = true
            if frames.isAtBoundary { sendCloseFrame() }
        case .sendBody(let part):
            transfer?.sendBody(part)
        case .endBody:
            transfer?.endBody()
        case .writeHead:
            preconditionFailure("response heads are written where the upstream head arrives")
        case .writeBody(let part):
            exchange?.bytesOut += Int64(part.readableBytes)
            if tunnelOpen {
                writeTunnelData(part)
            } else {
                transport.writeBody(part)
            }
            transfer?.consumed(part.readableBytes)
        case .dropBody(let count):
            transfer?.consumed(count)
        case .endResponse(let after):
            // Bookkeeping first: after a keep-alive end the transport may parse the next
            // pipelined request (from `readIfWanted`, below), which starts a new exchange.
            dropTransfer()
            finish(status: exchange?.status ?? 0, note: nil)
            tunnelClosed()
            transport.endResponse(after: after)
        case .respondWithError(let status, let cancelUpstream, let after):
            if cancelUpstream { cancelTransfer() } else { dropTransfer() }
            respondWithError(status: status, after: after)
        case .abort(let cancelUpstream, let status, let reason):
            if cancelUpstream { cancelTransfer() } else { dropTransfer() }
            finish(status: exchange?.status ?? status, note: reason.rawValue)
            tunnelClosed()
            transport.abort()
            timer.cancel()
        case .cancelUpstream:
            cancelTransfer()
            finish(status: 499, note: "client closed")
            tunnelClosed()
        case .startLingering:
            transport.startLingering()
        case .close:
            transport.close()
            timer.cancel()
        }
        syncTimer()
        transport.readIfWanted()
    }

    // MARK: Forwarding

    private func startUpstream(_ head: RequestHead, sendContinue: Bool) {
        guard let route = exchange?.route else { preconditionFailure("forwarding without a route") }
        if sendContinue { transport.writeContinue() }
        let headers = HeaderRewriting.upstreamRequestHeaders(
            head.headers, clientAddress: transport.clientAddress, scheme: transport.scheme,
            upstreamHost: route.upstreamHostHeader, preserveHost: route.preserveHost)
        let framing: RequestBodyFraming =
            switch head.body {
            case .none: .none
            case .length(let n): n == 0 ? .none : .length(n)
            case .chunked: .chunked
            }
        let request = TransferRequest(
            url: route.upstreamURL(path: head.path, query: head.query), method: head.method, headers: headers,
            body: framing, connectTimeoutMilliseconds: route.connectTimeoutMilliseconds,
            idleTimeoutMilliseconds: route.timeoutMilliseconds, tls: route.upstreamTLS)
        beginUpstream { server.transport.startTransfer(request, on: eventLoop, handler: $0) }
    }

    /// Starts the exchange's upstream work with `start`, whose events come back to this driver
    /// on its loop; events of an earlier exchange's transfer (an older generation) are dropped.
    private func beginUpstream(
        _ start: (_ handler: @escaping @Sendable (UpstreamEvent) -> Void) -> any UpstreamTransfer
    ) {
        generation &+= 1
        let expected = generation
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        self.exchange?.upstreamStarted = eventLoop.now
        let transfer = start { event in bound.value.upstreamEvent(event, generation: expected) }
        self.transfer = transfer
        if !transport.isWritable { transfer.setClientWritable(false) }
    }

    private func upstreamEvent(_ event: UpstreamEvent, generation expected: Int) {
        guard expected == generation, transfer != nil else { return }
        let now = eventLoop.now
        switch event {
        case .head(let status, let reason, let headers):
            writeUpstreamHead(status: status, reason: reason, headers: headers, now: now)
        case .body(let part):
            run(machine.upstreamBody(part))
        case .bodyConsumed(let count):
            machine.bodyConsumed(count, now: now)
            syncTimer()
            transport.readIfWanted()
        case .end:
            run(machine.upstreamEnd(now: now))
        case .failed(let error):
            dropTransfer()
            let route = exchange?.route ?? tunnelRoute
            if let route {
                server.metrics.upstreamError(upstream: route.upstreamName, kind: error.kind)
            }
            server.logger.warning(
                "upstream failed",
                metadata: [
                    "event": "upstream_error", "cors.route": "\(exchange?.routeLabel ?? route?.label ?? "-")",
                    "upstream.name": "\(route?.upstreamName ?? "-")",
                    "upstream.error": "\(error.kind.rawValue)", "cors.detail": "\(error.detail)",
                ])
            exchange?.note = error.detail
            run(machine.upstreamFailed(error.kind, now: now))
        }
    }

    private func writeUpstreamHead(status: Int, reason: String, headers: [HeaderField], now: NIODeadline) {
        guard var exchange else { preconditionFailure("an upstream head without an exchange") }
        exchange.upstreamHeadAt = now
        let rewrite = exchange.decision.responseRewrite
        let (lines, contentLength) = HeaderRewriting.clientResponseHeaders(
            headers, stripCORS: rewrite.stripCORS, varyOrigin: rewrite.varyOrigin, add: rewrite.add)
        let action = machine.upstreamHead(status: status, contentLength: contentLength)
        if action == .openTunnel {
            // The 101 goes back with all its headers as the upstream sent them (Upgrade,
            // Connection, Sec-WebSocket-*), and no Access-Control-* header: a browser reads none.
            exchange.status = status
            exchange.bytesOut += Int64(
                transport.writeHead(status: status, reason: reason, headers: headers, framing: .none, close: false))
            self.exchange = exchange
            guard let route = exchange.route else { preconditionFailure("a tunnel without a route") }
            tunnelRoute = route
            server.metrics.tunnelOpened()
            // The exchange (and the duration histogram) covers the handshake; the tunnel follows.
            finish(status: status, note: nil)
            syncTimer()
            // Bytes the client sent behind its handshake are now tunnel data.
            transport.readIfWanted()
            return
        }
        guard case .writeHead(let framing, let close) = action else {
            preconditionFailure("an upstream head became \(action)")
        }
        var framed = lines
        if framing == .none, let contentLength, exchange.method == "HEAD" || status == 304 {
            // No body follows, but the length the upstream announced is the resource's.
            framed.append(HeaderField("Content-Length", String(contentLength)))
        }
        exchange.status = status
        exchange.bytesOut += Int64(
            transport.writeHead(status: status, reason: reason, headers: framed, framing: framing, close: close))
        self.exchange = exchange
    }

    /// Sends the handshake upstream: the request's headers rewritten as for any request (hop-by-hop
    /// removed, `Host` and `X-Forwarded-*` set), then `Upgrade: websocket` and `Connection: Upgrade`
    /// put back; every `Sec-WebSocket-*` header passes as received.
    private func startTunnel(_ head: RequestHead) {
        guard let route = exchange?.route else { preconditionFailure("tunnelling without a route") }
        var headers = HeaderRewriting.upstreamRequestHeaders(
            head.headers, clientAddress: transport.clientAddress, scheme: transport.scheme,
            upstreamHost: route.upstreamHostHeader, preserveHost: route.preserveHost)
        headers.append(HeaderField("Upgrade", "websocket"))
        headers.append(HeaderField("Connection", "Upgrade"))
        var handshake = transport.allocator.buffer(capacity: 512)
        handshake.writeStaticString("GET ")
        handshake.writeString(route.upstreamTarget(path: head.path, query: head.query))
        handshake.writeStaticString(" HTTP/1.1\r\n")
        for header in headers { HTTP1Serialization.writeHeader(into: &handshake, header.name, header.value) }
        handshake.writeStaticString("\r\n")
        let request = TunnelRequest(
            url: route.upstreamURL(path: head.path, query: head.query), handshake: handshake,
            connectTimeoutMilliseconds: route.connectTimeoutMilliseconds,
            idleTimeoutMilliseconds: route.timeoutMilliseconds, tls: route.upstreamTLS)
        beginUpstream { server.transport.startTunnel(request, on: eventLoop, handler: $0) }
    }

    /// Upstream bytes through an open tunnel, their frames followed; after going away, only up
    /// to the end of the current frame, then the Close frame.
    private func writeTunnelData(_ part: ByteBuffer) {
        guard closeAtBoundary else {
            _ = frames.advance(over: part)
            transport.writeBody(part)
            return
        }
        var rest = part
        let upToBoundary = frames.advance(over: rest, stopAtBoundary: true)
        if let head = rest.readSlice(length: upToBoundary), head.readableBytes > 0 { transport.writeBody(head) }
        if frames.isAtBoundary { sendCloseFrame() }
    }

    /// The Close frame with 1001 (going away), then both sides close.
    private func sendCloseFrame() {
        closeAtBoundary = false
        transport.writeBody(WebSocketFrameBoundary.closeFrame(code: 1001, allocator: transport.allocator))
        cancelTransfer()
        tunnelClosed()
        transport.endResponse(after: .close)
    }

    private func tunnelClosed() {
        guard tunnelOpen else { return }
        tunnelRoute = nil
        server.metrics.tunnelClosed()
    }

    /// A proxy-made error (413, 502, 504, 400, 431, 408) with the CORS headers the request would have had.
    private func respondWithError(status: Int, after: ExchangeStateMachine.After) {
        let detail: String
        switch status {
        case 413:
            let limit = exchange?.route?.maxBodySize ?? 0
            detail = "request body larger than max_body_size (\(limit) bytes)"
        case 502: detail = "upstream unreachable: \(exchange?.note ?? "")"
        case 504: detail = "upstream timed out: \(exchange?.note ?? "")"
        case 408: detail = "no request body byte from the client for 60 s"
        default: detail = exchange?.note ?? "malformed request"
        }
        let decision = exchange?.decision ?? .passThrough
        let response =
            status == 400 || status == 431
            ? LocalResponse.refusal(status: status, detail: detail, decision: decision)
            : LocalResponse.error(status: status, detail: detail, decision: decision)
        let written = transport.writeLocalResponse(
            status: response.status, headers: response.headers, body: response.body,
            omitBody: exchange?.method == "HEAD", after: after)
        exchange?.bytesOut += Int64(written.bytes)
        finish(status: status, note: detail)
    }

    private func cancelTransfer() {
        guard let transfer else { return }
        self.transfer = nil
        generation &+= 1
        transfer.cancel()
    }

    /// The transfer is over by itself (end or failure): forget it.
    private func dropTransfer() {
        transfer = nil
        generation &+= 1
    }

    // MARK: The exchange record

    private func begin(
        route: ServingRoute?, config: ServingConfig, decision: Decision, kind: RequestKind, facts: RequestFacts,
        head: RequestHead
    ) {
        exchange = ExchangeRecord(
            route: route, metrics: route?.metrics ?? config.noRouteMetrics, decision: decision, kind: kind,
            outcome: decision.outcome, facts: facts, method: head.method, target: head.target,
            started: eventLoop.now)
        server.metrics.requestStarted()
    }

    /// Counts the exchange, writes its one log line (denials included) and forgets it.
    private func finish(status: Int, note: String?) {
        // take(): moved out, not copied (a copy retains every string and reference in it).
        guard var exchange = self.exchange.take() else { return }
        if exchange.status == 0 { exchange.status = status }
        if let note, exchange.note == nil { exchange.note = note }
        let elapsed = (eventLoop.now - exchange.started).nanoseconds
        exchange.metrics.record(kind: exchange.kind, outcome: exchange.outcome, nanoseconds: elapsed)
        server.metrics.requestFinished()
        let accessLog = server.accessLog
        guard accessLog.isEnabled(for: exchange.outcome) else { return }
        var upstreamNanoseconds: Int64? = nil
        if let started = exchange.upstreamStarted, let head = exchange.upstreamHeadAt {
            upstreamNanoseconds = (head - started).nanoseconds
        }
        accessLog.log(
            AccessLog.Entry(
                client: transport.clientAddress, method: exchange.method, target: exchange.target,
                route: exchange.routeLabel, kind: exchange.kind, status: status, outcome: exchange.outcome,
                durationNanoseconds: elapsed, origins: exchange.facts.origins,
                requestMethod: exchange.facts.requestMethod, requestHeaders: exchange.facts.requestHeaders,
                bytesIn: exchange.bytesIn, bytesOut: exchange.bytesOut,
                upstream: exchange.upstreamStarted == nil ? nil : exchange.route?.upstreamName,
                upstreamNanoseconds: upstreamNanoseconds, note: exchange.note),
            on: eventLoop)
    }

    // MARK: Timers

    /// Schedules a task for the machine's deadline unless one that fires earlier is pending.
    private func syncTimer() {
        let deadline = machine.timerDeadline
        guard timer.needsTask(for: deadline), let deadline else { return }
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        timer.schedule(at: deadline, on: eventLoop) { bound.value.timerFired() }
    }

    private func timerFired() {
        timer.fired()
        run(machine.timerFired(now: eventLoop.now))
    }
}

/// What a response the proxy makes itself is made of.
struct LocalResponse {
    var status: Int
    var headers: [HeaderField]
    /// A short text body (`text/plain`), or none.
    var body: String?

    /// A denial (403, 404 with `no route for PATH`, …) with the headers the decision gave it.
    static func denial(status: Int, headers: [HeaderField], path: Substring) -> LocalResponse {
        LocalResponse(status: status, headers: headers, body: status == 404 ? "no route for \(path)\n" : nil)
    }

    /// 413, 502, 504, 400, 431, 408: `STATUS REASON: detail`, with the CORS headers a success
    /// would have carried for the request's origin, so a browser script can read the status.
    static func error(status: Int, detail: String, decision: Decision) -> LocalResponse {
        LocalResponse(
            status: status, headers: decision.proxyMadeResponseHeaders,
            body: "\(status) \(HTTP1Serialization.standardReason(status)): \(detail)\n")
    }

    /// 400 or 431 for a request the parser refused: `malformed request: why` or
    /// `request head too large: why`, with the CORS headers as for `error`.
    static func refusal(status: Int, detail: String, decision: Decision) -> LocalResponse {
        let what = status == 431 ? "request head too large" : "malformed request"
        return LocalResponse(status: status, headers: decision.proxyMadeResponseHeaders, body: "\(what): \(detail)\n")
    }
}

/// What the response, the access-log line and the metrics need to remember of a request.
package struct ExchangeRecord {
    var route: ServingRoute?
    /// The route's series (`route="-"` when no route matched).
    var metrics: RouteMetrics
    var decision: Decision
    var kind: RequestKind
    var outcome: Outcome
    /// What the CORS decision read (the log keeps the Origin lines and, for preflights, what was asked).
    var facts: RequestFacts
    var method: String
    var target: String
    var status = 0
    var bytesIn: Int64 = 0
    var bytesOut: Int64 = 0
    var started: NIODeadline
    var upstreamStarted: NIODeadline? = nil
    var upstreamHeadAt: NIODeadline? = nil
    /// Why the exchange ended as it did, when not plainly (a cut, an upstream error).
    var note: String? = nil

    /// The route as written, for logs: `/api/`, `= /healthz`, or `-`.
    var routeLabel: String { metrics.label }

    init(
        route: ServingRoute?, metrics: RouteMetrics, decision: Decision, kind: RequestKind, outcome: Outcome,
        facts: RequestFacts, method: String, target: String, started: NIODeadline
    ) {
        self.route = route
        self.metrics = metrics
        self.decision = decision
        self.kind = kind
        self.outcome = outcome
        self.facts = facts
        self.method = method
        self.target = target
        self.started = started
    }
}

extension Decision {
    /// The `outcome` metric label this decision counts under.
    var outcome: Outcome {
        switch self {
        case .passThrough: return .passthrough
        case .preflight: return .allowed
        case .forward(_, _, _, let outcome): return outcome
        case .deny(let status, _, let denial):
            guard let denial, status != 404 else { return .noRoute }
            return .denied(denial)
        }
    }

    /// How the upstream's response headers are rewritten for this decision.
    var responseRewrite: (add: [HeaderField], stripCORS: Bool, varyOrigin: Bool) {
        switch self {
        case .forward(let add, let strip, let vary, _): return (add, strip, vary)
        case .passThrough, .preflight, .deny: return ([], false, false)
        }
    }
}
