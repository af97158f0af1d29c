import CORSPolicy
import HeaderFields
import Logging
import NIOCore
import NIOExtras
import Upstream

/// One browser-facing connection: parses requests, asks the conf for a decision,
/// answers locally or streams the exchange through the upstream transport.
///
/// Reads are pulled, not pushed: `read(context:)` is held back while the
/// upstream has more than 64 KiB of our request body unconsumed, or while a
/// response is in progress and the next pipelined request is already buffered.
final class ProxyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let idleTimeout = TimeAmount.seconds(60)
    static let headTimeout = TimeAmount.seconds(30)

    private let server: ServerContext
    private var logger: Logger
    private var context: ChannelHandlerContext?
    private var input: ByteBuffer
    private var parser = HTTPRequestParser()
    private var machine = ExchangeStateMachine()
    private var clientAddress = "unknown"

    // The exchange in progress.
    private var transfer: (any UpstreamTransfer)?
    private var generation = 0
    private var exchange: Exchange?
    private var readPending = false
    private var flushScheduled = false
    // One connection timer. Re-arming per request only moves `timerDeadline`; the
    // scheduled task re-checks it when it fires, so the event loop's timer heap is
    // not touched on every request.
    private var timerKind: TimerKind?
    private var timerDeadline = NIODeadline.distantFuture
    private var timerTask: Scheduled<Void>?
    private var timerTaskDeadline = NIODeadline.distantFuture

    /// What the response needs to remember about its request.
    private struct Exchange {
        var route: ServingRoute?
        /// The route's series (`route="-"` when no route matched).
        var metrics: RouteMetrics
        var decision: Decision
        var kind: RequestKind
        var outcome: Outcome
        /// The request's `Origin` and preflight lines, for its log line.
        var facts: RequestFacts?
        var method: String
        var target: String
        var keepAlive: Bool
        var framing: ExchangeStateMachine.ResponseFraming = .none
        var status = 0
        var bytesIn: Int64 = 0
        var bytesOut: Int64 = 0
        var started: NIODeadline
        var upstreamStarted: NIODeadline? = nil
        var upstreamHeadAt: NIODeadline? = nil

        /// The route as written, for logs: `/api/`, `= /healthz`, or `-`.
        var routeLabel: String { metrics.label }
    }

    init(server: ServerContext) {
        self.server = server
        self.logger = server.logger
        self.input = ByteBuffer()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.input = context.channel.allocator.buffer(capacity: 0)
        if let address = context.channel.remoteAddress?.ipAddress { clientAddress = address }
        logger[metadataKey: "client.address"] = "\(clientAddress)"
        if context.channel.isActive { armIdleTimer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if let address = context.channel.remoteAddress?.ipAddress {
            clientAddress = address
            logger[metadataKey: "client.address"] = "\(address)"
        }
        armIdleTimer(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timerTask?.cancel()
        timerTask = nil
        self.context = nil
    }

    // MARK: - Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if input.readableBytes == 0 {
            input = bytes
        } else {
            input.writeBuffer(&bytes)
        }
        processInput(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timerKind = nil
        timerTask?.cancel()
        timerTask = nil
        if machine.clientClosed() == .cancelAndClose {
            cancelTransfer()
            finishExchange(status: 499, note: "client closed")
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Connection resets and the like: the inactive path cleans up.
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        transfer?.setClientWritable(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            if machine.drain() == .close {
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: - Outbound read gate

    func read(context: ChannelHandlerContext) {
        if canRead {
            readPending = false
            context.read()
        } else {
            readPending = true
        }
    }

    private var canRead: Bool {
        guard machine.shouldRead else { return false }
        // A pipelined request waits in `input` until the current response is done.
        if !machine.acceptsNewRequest && parser.isAtRequestBoundary && input.readableBytes > 0 { return false }
        return input.readableBytes <= HTTPRequestParser.maxHeadSize + 4096
    }

    private func releaseReadIfPossible(context: ChannelHandlerContext) {
        if readPending && canRead {
            readPending = false
            context.read()
        }
    }

    // MARK: - Parsing

    private func processInput(context: ChannelHandlerContext) {
        while machine.state != .closed {
            if !machine.acceptsNewRequest && parser.isAtRequestBoundary { break }
            let part: HTTPRequestParser.Part?
            do {
                part = try parser.next(&input)
            } catch {
                rejectMalformed(context: context, error: error)
                return
            }
            guard let part else { break }
            switch part {
            case .head(let head):
                timerKind = nil
                handleHead(head, context: context)
            case .body(let body):
                handleBody(body, context: context)
            case .end:
                handleEnd(context: context)
            }
        }
        if machine.state == .idle && input.readableBytes > 0 && parser.isAtRequestBoundary == false {
            armHeadTimer(context: context)
        }
        if input.readableBytes == 0 {
            input.clear()
        } else if input.readerIndex > 64 * 1024 {
            input.discardReadBytes()
        }
        releaseReadIfPossible(context: context)
    }

    /// 400 or 431: the request could not be understood. The connection closes. The answer
    /// carries the CORS headers a success would have had for that origin (SPEC 3), so a
    /// script can read the status.
    private func rejectMalformed(context: ChannelHandlerContext, error: HTTPParseError) {
        let text = "\(error.status == 431 ? "request head too large" : "malformed request"): \(error.detail)\n"
        switch machine.state {
        case .idle:
            // Refused at the head: decide as well as the bytes allow, for the headers only.
            var decision = Decision.passThrough
            if let head = HTTPRequestParser.salvageHead(input) {
                let config = server.config
                let route = config.route(for: head.path)
                let facts = Self.facts(from: head, scheme: server.scheme)
                decision = config.decide(facts, route: route)
                beginExchange(
                    route: route, config: config, decision: decision, kind: .actual, facts: facts, head: head,
                    keepAlive: false)
            } else {
                // Not even a request line to log it by: a line of its own.
                logger.info(
                    "malformed request",
                    metadata: [
                        "event": "malformed", "http.status": "\(error.status)", "cors.detail": "\(error.detail)",
                    ])
            }
            _ = machine.clientClosed()
            writeLocalResponse(
                status: error.status, lines: Self.plainTextHeaders(decision.proxyMadeResponseHeaders, body: text),
                body: text,
                close: true, note: error.detail, fromParser: false, context: context)
        case .waiting:
            // A broken request body before the upstream answered: 400 with this request's headers.
            cancelTransfer()
            _ = machine.clientClosed()
            let decision = exchange?.decision ?? .passThrough
            writeLocalResponse(
                status: error.status, lines: Self.plainTextHeaders(decision.proxyMadeResponseHeaders, body: text),
                body: text,
                close: true, note: error.detail, fromParser: false, context: context)
        case .streaming, .closed:
            // The response has started: only closing is honest.
            _ = machine.clientClosed()
            cancelTransfer()
            finishExchange(status: 400, note: error.detail)
            context.close(promise: nil)
        }
    }

    /// `fields` plus `Content-Type` and `Content-Length` for a short text body.
    private static func plainTextHeaders(_ fields: [HeaderField], body: String) -> [HeaderField] {
        var lines = fields
        lines.append(HeaderField("Content-Type", "text/plain; charset=utf-8"))
        lines.append(HeaderField("Content-Length", String(body.utf8.count)))
        return lines
    }

    private func handleHead(_ head: RequestHead, context: ChannelHandlerContext) {
        let config = server.config
        let route = config.route(for: head.path)
        let facts = Self.facts(from: head, scheme: server.scheme)
        let keepAlive = head.keepAlive && !machine.isDraining
        // An allowed preflight this route answered before: its response is already rendered.
        var preflightKey: PreflightResponseCache.Key?
        if let route, route.policy != nil, head.method == "OPTIONS", let requestMethod = facts.requestMethod,
            keepAlive, head.body == .none
        {
            let key = PreflightResponseCache.Key(facts, requestMethod: requestMethod)
            if let cached = route.preflightResponses.entry(for: key) {
                beginExchange(
                    route: route, config: config, decision: cached.decision, kind: .preflight,
                    facts: facts, head: head, keepAlive: true)
                finishLocalResponse(
                    cached.response, status: cached.status, close: false, note: nil, fromParser: true, context: context)
                return
            }
            preflightKey = key
        }
        let decision = config.decide(facts, route: route)
        let isPreflight: Bool
        if case .preflight = decision {
            isPreflight = true
        } else {
            isPreflight = head.method == "OPTIONS" && facts.requestMethod != nil
        }
        beginExchange(
            route: route, config: config, decision: decision, kind: isPreflight ? .preflight : .actual,
            facts: facts, head: head, keepAlive: keepAlive)

        switch decision {
        case .preflight(let status, let headers):
            let response = answerLocally(status: status, headers: headers, body: nil, head: head, context: context)
            if let preflightKey, let route {
                route.preflightResponses.store(
                    .init(status: status, decision: decision, response: response), for: preflightKey)
            }
        case .deny(let status, let headers, _):
            let body: String? = status == 404 ? "no route for \(String(head.path))\n" : nil
            answerLocally(status: status, headers: headers, body: body, head: head, context: context)
        case .passThrough:
            forward(head, route: route, facts: facts, context: context)
        case .forward:
            if head.isUpgrade {
                // Upgrades (WebSocket) are not proxied yet (SPEC 3): 501, nothing forwarded.
                answerLocally(
                    status: 501, headers: decision.proxyMadeResponseHeaders,
                    body: "upgrade requests are not supported\n",
                    head: head, context: context)
                return
            }
            forward(head, route: route, facts: facts, context: context)
        }
    }

    /// Starts the record of an exchange: what its response, access-log line and metrics need.
    private func beginExchange(
        route: ServingRoute?, config: ServingConfig, decision: Decision, kind: RequestKind, facts: RequestFacts?,
        head: RequestHead, keepAlive: Bool
    ) {
        exchange = Exchange(
            route: route, metrics: route?.metrics ?? config.noRouteMetrics,
            decision: decision, kind: kind, outcome: decision.outcome, facts: facts, method: head.method,
            target: head.target, keepAlive: keepAlive, started: .now())
        server.metrics.requestStarted()
    }

    /// Writes a complete local response (preflight, denial, 404, 501). A request body
    /// that was announced is not read: the connection closes after the answer.
    /// Rendered straight into the buffer: this is the preflight hot path.
    /// Returns the rendered response.
    @discardableResult
    private func answerLocally(
        status: Int, headers: [HeaderField], body: String?, head: RequestHead, context: ChannelHandlerContext
    ) -> ByteBuffer {
        let close = !head.keepAlive || head.body != .none || machine.isDraining
        var buffer = context.channel.allocator.buffer(capacity: 512)
        ResponseWriter.writeStatusLine(into: &buffer, status: status)
        var hasLength = false
        for field in headers {
            ResponseWriter.writeHeader(into: &buffer, field.name, field.value)
            if field.name == "Content-Length" { hasLength = true }
        }
        if let body {
            buffer.writeStaticString("Content-Type: text/plain; charset=utf-8\r\nContent-Length: ")
            buffer.writeString(String(body.utf8.count))
            buffer.writeStaticString("\r\n")
        } else if status != 204 && !hasLength {
            // 204 carries no Content-Length (SPEC 3); everything else says its empty body is empty.
            buffer.writeStaticString("Content-Length: 0\r\n")
        }
        if close { buffer.writeStaticString("Connection: close\r\n") }
        buffer.writeStaticString("\r\n")
        if let body, head.method != "HEAD" { buffer.writeString(body) }
        // Called while parsing: the parse loop goes on by itself, the read-complete flush sends it.
        finishLocalResponse(buffer, status: status, close: close, note: nil, fromParser: true, context: context)
        return buffer
    }

    /// Writes a response the proxy made itself, records the exchange, then closes the
    /// connection or waits for the next request.
    private func writeLocalResponse(
        status: Int, lines: [HeaderField], body: String?, close: Bool, note: String?,
        fromParser: Bool, context: ChannelHandlerContext
    ) {
        var lines = lines
        if close { lines.append(HeaderField("Connection", "close")) }
        var buffer = context.channel.allocator.buffer(capacity: 512)
        ResponseWriter.writeHead(into: &buffer, status: status, headers: lines)
        if let body, exchange?.method != "HEAD" { buffer.writeString(body) }
        finishLocalResponse(buffer, status: status, close: close, note: note, fromParser: fromParser, context: context)
    }

    /// Sends a rendered local response, records the exchange, then closes or waits for the next request.
    private func finishLocalResponse(
        _ buffer: ByteBuffer, status: Int, close: Bool, note: String?, fromParser: Bool, context: ChannelHandlerContext
    ) {
        exchange?.status = status
        exchange?.bytesOut += Int64(buffer.readableBytes)
        finishExchange(status: status, note: note)
        if close {
            _ = machine.clientClosed()
            context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { [channel = context.channel] _ in
                channel.close(promise: nil)
            }
        } else if fromParser {
            context.write(wrapOutboundOut(buffer), promise: nil)
            armIdleTimerIfQuiet(context: context)
        } else {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            armIdleTimerIfQuiet(context: context)
            processInput(context: context)
        }
    }

    private func forward(_ head: RequestHead, route: ServingRoute?, facts: RequestFacts, context: ChannelHandlerContext)
    {
        guard let route else { return }
        let declared: Int64? = if case .length(let n) = head.body { n } else { nil }
        let hasBody = head.body != .none && declared != 0
        let action = machine.forward(
            keepAlive: head.keepAlive, isHead: head.method == "HEAD", http10: head.versionMinor == 0,
            hasBody: hasBody, declaredLength: declared, bodyLimit: route.maxBodySize)
        if case .respond(let status, _) = action {
            respondWithError(
                status: status, detail: "request body larger than max_body_size (\(route.maxBodySize) bytes)",
                close: true, context: context)
            return
        }
        if hasBody { arm(.body, context: context) }
        if head.expectContinue && hasBody {
            var buffer = context.channel.allocator.buffer(capacity: 32)
            buffer.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
        let headers = HeaderRewriting.upstreamRequestHeaders(
            head.headers, clientAddress: clientAddress, scheme: server.scheme, upstreamHost: route.upstreamHostHeader,
            preserveHost: route.preserveHost)
        let framing: RequestBodyFraming =
            switch head.body {
            case .none: .none
            case .length(let n): n == 0 ? .none : .length(n)
            case .chunked: .chunked
            }
        let request = TransferRequest(
            url: route.upstreamURL(path: head.path, query: head.query), method: head.method, headers: headers,
            body: framing, connectTimeoutMilliseconds: route.connectTimeoutMilliseconds,
            idleTimeoutMilliseconds: route.timeoutMilliseconds)
        generation &+= 1
        let expected = generation
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        exchange?.upstreamStarted = .now()
        let transfer = server.transport.startTransfer(request, on: context.eventLoop) { event in
            bound.value.upstreamEvent(event, generation: expected)
        }
        self.transfer = transfer
        if !context.channel.isWritable { transfer.setClientWritable(false) }
    }

    private func handleBody(_ body: ByteBuffer, context: ChannelHandlerContext) {
        exchange?.bytesIn += Int64(body.readableBytes)
        switch machine.requestBody(body.readableBytes) {
        case .sendBody:
            arm(.body, context: context)
            transfer?.sendBody(body)
        case .respond(let status, _):
            cancelTransfer()
            respondWithError(
                status: status, detail: "request body larger than max_body_size", close: true, context: context)
        case .cancelAndClose:
            cancelTransfer()
            finishExchange(status: 413, note: "request body over max_body_size after the response started")
            context.close(promise: nil)
        default:
            break
        }
    }

    private func handleEnd(context: ChannelHandlerContext) {
        if machine.requestEnd() == .endBody {
            timerKind = nil
            transfer?.endBody()
        }
    }

    // MARK: - Upstream events

    private func upstreamEvent(_ event: UpstreamEvent, generation expected: Int) {
        guard expected == generation, let context, transfer != nil else { return }
        switch event {
        case .head(let status, let headers):
            writeUpstreamHead(status: status, headers: headers, context: context)
        case .body(let body):
            guard machine.upstreamBody() == .writeBody else {
                transfer?.consumed(body.readableBytes)
                return
            }
            writeBody(body, context: context)
        case .bodyConsumed(let n):
            machine.bodyConsumed(n)
            releaseReadIfPossible(context: context)
        case .end:
            let action = machine.upstreamEnd()
            guard case .finish(let close) = action else { return }
            if exchange?.framing == .chunked {
                var buffer = context.channel.allocator.buffer(capacity: 5)
                buffer.writeStaticString("0\r\n\r\n")
                context.write(wrapOutboundOut(buffer), promise: nil)
            }
            transfer = nil
            finishExchange(status: exchange?.status ?? 0, note: nil)
            if close {
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)))
                    .whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
            } else {
                context.flush()
                armIdleTimerIfQuiet(context: context)
                processInput(context: context)
            }
        case .failed(let error):
            transfer = nil
            if let route = exchange?.route {
                server.metrics.upstreamError(upstream: route.upstreamName, kind: error.kind)
            }
            logger.warning(
                "upstream failed",
                metadata: [
                    "event": "upstream_error", "cors.route": "\(exchange?.routeLabel ?? "-")",
                    "upstream.name": "\(exchange?.route?.upstreamName ?? "-")",
                    "upstream.error": "\(error.kind.rawValue)", "cors.detail": "\(error.detail)",
                ])
            switch machine.upstreamFailed(error.kind) {
            case .respond(let status, let close):
                let what = status == 504 ? "upstream timed out" : "upstream unreachable"
                respondWithError(status: status, detail: "\(what): \(error.detail)", close: close, context: context)
            case .close:
                finishExchange(status: exchange?.status ?? 0, note: "upstream failed mid-response")
                context.close(promise: nil)
            default:
                break
            }
        }
    }

    private func writeUpstreamHead(status: Int, headers: [HeaderField], context: ChannelHandlerContext) {
        guard var exchange else { return }
        exchange.upstreamHeadAt = .now()
        let add: [HeaderField]
        let strip: Bool
        let vary: Bool
        switch exchange.decision {
        case .forward(let a, let s, let v, _):
            (add, strip, vary) = (a, s, v)
        default:
            (add, strip, vary) = ([], false, false)
        }
        let passThrough = exchange.decision == .passThrough
        var (lines, contentLength) = HeaderRewriting.clientResponseHeaders(
            headers, stripCORS: strip && !passThrough, varyOrigin: vary && !passThrough, add: passThrough ? [] : add)
        let action = machine.upstreamHead(status: status, contentLength: contentLength)
        guard case .writeHead(let framing, let close) = action else { return }
        exchange.framing = framing
        exchange.status = status
        switch framing {
        case .length(let n):
            lines.append(HeaderField("Content-Length", String(n)))
        case .chunked:
            lines.append(HeaderField("Transfer-Encoding", "chunked"))
        case .none:
            if let contentLength, exchange.method == "HEAD" || status == 304 {
                lines.append(HeaderField("Content-Length", String(contentLength)))
            }
        case .closeDelimited:
            break
        }
        if close || machine.isDraining { lines.append(HeaderField("Connection", "close")) }
        var buffer = context.channel.allocator.buffer(capacity: 512)
        ResponseWriter.writeHead(into: &buffer, status: status, headers: lines)
        exchange.bytesOut += Int64(buffer.readableBytes)
        self.exchange = exchange
        context.write(wrapOutboundOut(buffer), promise: nil)
        flushSoon(context: context)
    }

    /// Flushes once after the current batch of upstream events, so a small response's
    /// head, body and end leave in one `writev` instead of one syscall each.
    private func flushSoon(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let handler = bound.value
            handler.flushScheduled = false
            handler.context?.flush()
        }
    }

    private func writeBody(_ body: ByteBuffer, context: ChannelHandlerContext) {
        let count = body.readableBytes
        guard count > 0 else { return }
        exchange?.bytesOut += Int64(count)
        if exchange?.framing == .chunked {
            var size = context.channel.allocator.buffer(capacity: 12)
            size.writeString(String(count, radix: 16))
            size.writeStaticString("\r\n")
            context.write(wrapOutboundOut(size), promise: nil)
            context.write(wrapOutboundOut(body), promise: nil)
            var crlf = context.channel.allocator.buffer(capacity: 2)
            crlf.writeStaticString("\r\n")
            context.write(wrapOutboundOut(crlf), promise: nil)
        } else {
            context.write(wrapOutboundOut(body), promise: nil)
        }
        flushSoon(context: context)
        transfer?.consumed(count)
    }

    /// A proxy-made 413/502/504 with the CORS headers the request would have had.
    private func respondWithError(status: Int, detail: String, close: Bool, context: ChannelHandlerContext) {
        let body = "\(status) \(ResponseWriter.reason(status)): \(detail)\n"
        writeLocalResponse(
            status: status,
            lines: Self.plainTextHeaders((exchange?.decision ?? .passThrough).proxyMadeResponseHeaders, body: body),
            body: body, close: close || machine.isDraining, note: detail, fromParser: false, context: context)
    }

    private func cancelTransfer() {
        if let transfer {
            self.transfer = nil
            generation &+= 1
            transfer.cancel()
        }
    }

    /// The request's one log line (denials included), metrics; the exchange is forgotten.
    private func finishExchange(status: Int, note: String?) {
        guard let exchange else { return }
        self.exchange = nil
        let now = NIODeadline.now()
        let elapsed = (now - exchange.started).nanoseconds
        exchange.metrics.record(kind: exchange.kind, outcome: exchange.outcome, nanoseconds: elapsed)
        server.metrics.requestFinished()
        let accessLog = server.accessLog
        guard accessLog.isEnabled(for: exchange.outcome), let eventLoop = context?.eventLoop else { return }
        var upstreamNanoseconds: Int64? = nil
        if let s = exchange.upstreamStarted, let h = exchange.upstreamHeadAt {
            upstreamNanoseconds = (h - s).nanoseconds
        }
        accessLog.log(
            AccessLog.Entry(
                client: clientAddress, method: exchange.method, target: exchange.target, route: exchange.routeLabel,
                kind: exchange.kind, status: status, outcome: exchange.outcome, durationNanoseconds: elapsed,
                origins: exchange.facts?.origins ?? [], requestMethod: exchange.facts?.requestMethod,
                requestHeaders: exchange.facts?.requestHeaders ?? [], bytesIn: exchange.bytesIn,
                bytesOut: exchange.bytesOut,
                upstream: exchange.upstreamStarted == nil ? nil : exchange.route?.upstreamName,
                upstreamNanoseconds: upstreamNanoseconds, note: note),
            on: eventLoop)
    }

    // MARK: - Timers

    /// What a connection timer guards: a slow client cannot hold a connection forever.
    private enum TimerKind {
        /// Between requests (keep-alive): 60 s.
        case idle
        /// A request head is arriving: 30 s to complete it.
        case head
        /// A request body is arriving: 60 s without a byte from the client.
        case body
    }

    private func arm(_ kind: TimerKind, context: ChannelHandlerContext) {
        let delay: TimeAmount = kind == .head ? Self.headTimeout : Self.idleTimeout
        timerKind = kind
        timerDeadline = .now() + delay
        // Only a deadline earlier than the pending task's needs a new task.
        if timerTask == nil || timerDeadline < timerTaskDeadline {
            scheduleTimerTask(context: context)
        }
    }

    private func scheduleTimerTask(context: ChannelHandlerContext) {
        timerTask?.cancel()
        timerTaskDeadline = timerDeadline
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timerTask = context.eventLoop.scheduleTask(deadline: timerDeadline) {
            bound.value.timerTaskRan()
        }
    }

    private func timerTaskRan() {
        timerTask = nil
        guard let kind = timerKind, let context else { return }
        if NIODeadline.now() < timerDeadline {
            // Re-armed since this task was scheduled: wait for the new deadline.
            scheduleTimerTask(context: context)
            return
        }
        timerKind = nil
        timerFired(kind)
    }

    private func armIdleTimer(context: ChannelHandlerContext) { arm(.idle, context: context) }

    private func armIdleTimerIfQuiet(context: ChannelHandlerContext) {
        if input.readableBytes == 0 { arm(.idle, context: context) }
    }

    private func armHeadTimer(context: ChannelHandlerContext) { arm(.head, context: context) }

    private func timerFired(_ kind: TimerKind) {
        guard let context else { return }
        switch kind {
        case .idle, .head:
            guard machine.acceptsNewRequest else { return }
            _ = machine.clientClosed()
        case .body:
            // The client stopped sending its body: give up on the exchange.
            guard machine.clientClosed() == .cancelAndClose else { return }
            cancelTransfer()
            finishExchange(status: 408, note: "no request body byte from the client for 60 s")
        }
        context.close(promise: nil)
    }

    // MARK: - Facts

    /// The CORS-relevant facts of a request head, in one pass over its headers.
    static func facts(from head: RequestHead, scheme: Scheme) -> RequestFacts {
        var facts = RequestFacts(method: head.method, path: head.path, scheme: scheme)
        for header in head.headers {
            let (name, value) = (header.name, header.value)
            switch name.utf8.count {
            case 4 where ASCII.equalsLowercase(name.utf8, "host"):
                facts.host = value
            case 6 where ASCII.equalsLowercase(name.utf8, "origin"):
                // An empty Origin counts as absent (SPEC 3).
                if !value.isEmpty { facts.origins.append(value) }
            case 29 where ASCII.equalsLowercase(name.utf8, "access-control-request-method"):
                facts.requestMethod = value
            case 30 where ASCII.equalsLowercase(name.utf8, "access-control-request-headers"):
                facts.requestHeaders.append(value)
            case 38 where ASCII.equalsLowercase(name.utf8, "access-control-request-private-network"):
                if ASCII.equalsLowercase(value.utf8, "true") { facts.privateNetwork = true }
            default:
                break
            }
        }
        return facts
    }
}

extension Decision {
    /// The `outcome` metric label this decision counts under.
    fileprivate var outcome: Outcome {
        switch self {
        case .passThrough: return .passthrough
        case .preflight: return .allowed
        case .forward(_, _, _, let outcome): return outcome
        case .deny(let status, _, let denial):
            guard let denial, status != 404 else { return .noRoute }
            return .denied(denial)
        }
    }
}
