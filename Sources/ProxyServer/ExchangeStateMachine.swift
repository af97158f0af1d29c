import HeaderFields
import Upstream

/// The life of one forwarded exchange on a client connection, without I/O:
/// events in, actions out. The handler runs the actions; tests feed events.
package struct ExchangeStateMachine: Sendable {
    /// Unconsumed request body bytes beyond which the client socket is not read.
    package static let requestBodyHighWater = 64 * 1024

    package enum State: Sendable, Equatable {
        /// No exchange: the next request head may be parsed.
        case idle
        /// Forwarded; the upstream's head has not arrived.
        case waiting
        /// The response head went to the client; its body follows.
        case streaming
        /// The connection is done; nothing more is written.
        case closed
    }

    /// How the response body is framed for the client.
    package enum ResponseFraming: Sendable, Equatable {
        case none
        case length(Int64)
        case chunked
        /// HTTP/1.0 client, no length: the body ends when the connection closes.
        case closeDelimited
    }

    package enum Action: Sendable, Equatable {
        case none
        /// Pass these bytes to the transfer.
        case sendBody
        /// The request body is complete.
        case endBody
        /// Answer with a proxy-made status (413, 502, 504) and close when `close`.
        case respond(status: Int, close: Bool)
        /// Write the response head with this framing.
        case writeHead(ResponseFraming, close: Bool)
        case writeBody
        /// Finish the response; then close, or go back to idle.
        case finish(close: Bool)
        /// Stop the transfer and close the client connection.
        case cancelAndClose
        /// Close the connection (the transfer is already over).
        case close
    }

    package private(set) var state: State = .idle
    private var keepAlive = true
    private var isHead = false
    private var clientIsHTTP10 = false
    private var bodyLimit: Int64 = 0
    private var requestBytes: Int64 = 0
    private var requestComplete = true
    private var unconsumed = 0
    private var framing: ResponseFraming = .none
    private var draining = false

    package init() {}

    /// The client socket may be read: idle, or a request body is streaming under the high-water mark.
    package var shouldRead: Bool {
        switch state {
        case .idle: return true
        case .waiting, .streaming: return requestComplete || unconsumed < Self.requestBodyHighWater
        case .closed: return false
        }
    }

    /// A new request head may be parsed.
    package var acceptsNewRequest: Bool { state == .idle }

    /// A forwarded request starts. `declaredLength` is its Content-Length, if any.
    package mutating func forward(
        keepAlive: Bool, isHead: Bool, http10: Bool, hasBody: Bool, declaredLength: Int64?, bodyLimit: Int64
    ) -> Action {
        precondition(state == .idle, "a request head was parsed while an exchange was active")
        if bodyLimit > 0, let declaredLength, declaredLength > bodyLimit {
            // Refused on Content-Length before anything is forwarded (SPEC 3).
            state = .closed
            return .respond(status: 413, close: true)
        }
        self.keepAlive = keepAlive && !draining
        self.isHead = isHead
        self.clientIsHTTP10 = http10
        self.bodyLimit = bodyLimit
        self.requestBytes = 0
        self.requestComplete = !hasBody
        self.unconsumed = 0
        state = .waiting
        return .none
    }

    /// A part of the request body arrived from the client.
    package mutating func requestBody(_ count: Int) -> Action {
        guard state == .waiting || state == .streaming, !requestComplete else { return .none }
        requestBytes += Int64(count)
        if bodyLimit > 0 && requestBytes > bodyLimit {
            // A chunked body passed the limit mid-stream: 413 if nothing was sent yet, else close.
            let wasWaiting = state == .waiting
            state = .closed
            return wasWaiting ? .respond(status: 413, close: true) : .cancelAndClose
        }
        unconsumed += count
        return .sendBody
    }

    package mutating func requestEnd() -> Action {
        guard state == .waiting || state == .streaming, !requestComplete else { return .none }
        requestComplete = true
        return .endBody
    }

    /// curl took `count` request body bytes.
    package mutating func bodyConsumed(_ count: Int) {
        unconsumed = max(0, unconsumed - count)
    }

    /// The upstream's response head arrived.
    package mutating func upstreamHead(status: Int, contentLength: Int64?) -> Action {
        guard state == .waiting else { return .none }
        state = .streaming
        if isHead || ResponseWriter.statusForbidsBody(status) {
            framing = .none
        } else if let contentLength {
            framing = .length(contentLength)
        } else if clientIsHTTP10 {
            framing = .closeDelimited
            keepAlive = false
        } else {
            framing = .chunked
        }
        // A response that ends before the request body was sent in full leaves
        // unread bytes on the client connection: close it afterwards.
        return .writeHead(framing, close: !keepAlive)
    }

    package mutating func upstreamBody() -> Action {
        guard state == .streaming else { return .none }
        return framing == .none ? .none : .writeBody
    }

    package mutating func upstreamEnd() -> Action {
        guard state == .streaming else { return .none }
        let close = !keepAlive || !requestComplete
        state = close ? .closed : .idle
        return .finish(close: close)
    }

    package mutating func upstreamFailed(_ kind: UpstreamError.Kind) -> Action {
        switch state {
        case .waiting:
            state = .closed
            // The client may still be sending a body we will not read: close after the answer.
            let close = !keepAlive || !requestComplete
            if !close { state = .idle }
            return .respond(status: kind == .timeout ? 504 : 502, close: close)
        case .streaming:
            // Never a complete-looking response after an upstream failure (SPEC 3).
            state = .closed
            return .close
        case .idle, .closed:
            return .none
        }
    }

    /// The client went away.
    package mutating func clientClosed() -> Action {
        switch state {
        case .waiting, .streaming:
            state = .closed
            return .cancelAndClose
        case .idle:
            state = .closed
            return .none
        case .closed:
            return .none
        }
    }

    /// Shutdown started: close now when idle, else after this exchange.
    package mutating func drain() -> Action {
        draining = true
        keepAlive = false
        if state == .idle {
            state = .closed
            return .close
        }
        return .none
    }

    package var isDraining: Bool { draining }
}
