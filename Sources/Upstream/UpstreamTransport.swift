import HeaderFields
import NIOCore

/// Why an upstream exchange failed. `kind` is the metric label of
/// `cors_proxy_upstream_errors_total`; `detail` comes from curl's error buffer.
package struct UpstreamError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Kind: String, Sendable, Equatable {
        /// Refused or unreachable: nothing reached the upstream.
        case connect
        /// No byte from the upstream for the route's `timeout` (or `connect_timeout` while connecting).
        case timeout
        /// The connection broke after it was made (reset, closed early, bad response).
        case reset
        /// The TLS handshake with an `https://` upstream failed: an untrusted certificate, a
        /// name mismatch, or an alert (a refused client certificate counts too).
        case tls
    }
    package var kind: Kind
    package var curlCode: Int32
    package var detail: String

    package init(kind: Kind, curlCode: Int32, detail: String) {
        self.kind = kind
        self.curlCode = curlCode
        self.detail = detail
    }

    package var description: String { "\(kind.rawValue): \(detail) (curl \(curlCode))" }
}

/// How the request body reaches curl.
package enum RequestBodyFraming: Sendable, Equatable {
    case none
    case length(Int64)
    case chunked
}

/// How to speak TLS to an `https://` upstream: the conf's `ca_file`, `tls_verify`,
/// `client_certificate` and `client_key`, as paths to hand to the TLS library.
package struct UpstreamTLS: Sendable, Hashable {
    /// Trust only the CAs in this PEM file; nil trusts the system's store.
    package var caFile: String?
    /// Check the certificate chain and that it names the URL's host.
    package var verify: Bool
    /// The client certificate (PEM) for mutual TLS; set together with `clientKey`.
    package var clientCertificate: String?
    /// The client certificate's private key (PEM).
    package var clientKey: String?

    /// The system's CAs, verification on, no client certificate unless given.
    package init(caFile: String? = nil, verify: Bool = true, clientCertificate: String? = nil, clientKey: String? = nil)
    {
        self.caFile = caFile
        self.verify = verify
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
    }
}

/// Everything the worker needs to start one upstream exchange. Headers are
/// final: hop-by-hop removed, `Host` and `X-Forwarded-*` already set by the server.
package struct TransferRequest: Sendable {
    /// The full URL: upstream base + path + `?query`, byte for byte.
    package var url: String
    package var method: String
    package var headers: [HeaderField]
    package var body: RequestBodyFraming
    package var connectTimeoutMilliseconds: Int
    /// The conf's `timeout`: no byte from the upstream for this long (paused time excluded).
    package var idleTimeoutMilliseconds: Int
    /// The upstream's TLS settings; nil means the defaults of `UpstreamTLS()` (an `http://`
    /// upstream has nil, and the settings do not matter to it). Required, never defaulted,
    /// so no caller can forget an upstream's `ca_file` or client certificate.
    package var tls: UpstreamTLS?

    package init(
        url: String, method: String, headers: [HeaderField], body: RequestBodyFraming,
        connectTimeoutMilliseconds: Int, idleTimeoutMilliseconds: Int, tls: UpstreamTLS?
    ) {
        self.url = url
        self.method = method
        self.headers = headers
        self.body = body
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.idleTimeoutMilliseconds = idleTimeoutMilliseconds
        self.tls = tls
    }
}

/// What an upstream exchange reports, delivered on the connection's EventLoop, in order.
package enum UpstreamEvent: Sendable {
    /// The final response head (1xx interim responses are not reported). `reason` is the
    /// upstream's reason phrase as sent (possibly empty), passed on to HTTP/1.1 clients.
    case head(status: Int, reason: String, headers: [HeaderField])
    /// A part of the response body.
    case body(ByteBuffer)
    /// curl took `n` bytes of the request body: the server may read more from the client.
    case bodyConsumed(Int)
    /// The response is complete.
    case end
    /// The exchange failed; no further events follow.
    case failed(UpstreamError)
}

/// The server's side of one running exchange. Every method is called on the
/// EventLoop the transfer was started on.
package protocol UpstreamTransfer: AnyObject, Sendable {
    /// Queues request body bytes for curl (the server bounds what is unconsumed).
    func sendBody(_ buffer: ByteBuffer)
    /// The request body is complete.
    func endBody()
    /// The client channel took `bytes` of response body: returns receive credit.
    func consumed(_ bytes: Int)
    /// The client channel's writability changed; receiving resumes when it is writable again.
    func setClientWritable(_ writable: Bool)
    /// Stops the exchange at once; its upstream connection is not reused. No event follows.
    func cancel()
}

/// A WebSocket handshake to open as a tunnel. The upstream connection is made for this
/// tunnel alone (TCP, and TLS for an `https://` URL) and never returns to the keep-alive
/// pool, whatever the upstream answers.
package struct TunnelRequest: Sendable {
    /// Where the handshake goes: the upstream's URL (its scheme, host and port are used to
    /// connect; the request target is in `handshake`).
    package var url: String
    /// The request line, the headers and the blank line, exactly as the upstream must receive them.
    package var handshake: ByteBuffer
    package var connectTimeoutMilliseconds: Int
    /// No byte in either direction for this long: the tunnel is closed (`.failed`, kind `.timeout`).
    package var idleTimeoutMilliseconds: Int
    /// The upstream's TLS settings, for an `https://` URL (nil: the defaults).
    package var tls: UpstreamTLS?

    package init(
        url: String, handshake: ByteBuffer, connectTimeoutMilliseconds: Int, idleTimeoutMilliseconds: Int,
        tls: UpstreamTLS? = nil
    ) {
        self.url = url
        self.handshake = handshake
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.idleTimeoutMilliseconds = idleTimeoutMilliseconds
        self.tls = tls
    }
}

/// Starts upstream exchanges (libcurl in production, a fake in handler tests).
package protocol UpstreamTransport: Sendable {
    /// Starts an exchange; `handler` gets its events on `eventLoop`, in order.
    func startTransfer(
        _ request: TransferRequest, on eventLoop: any EventLoop,
        handler: @escaping @Sendable (UpstreamEvent) -> Void
    ) -> any UpstreamTransfer

    /// Opens a WebSocket tunnel; `handler` gets its events on `eventLoop`, in order:
    /// - `.head`: the upstream's answer to the handshake;
    /// - after a `101`: the upstream's bytes as `.body`, untouched, until `.end` (the upstream
    ///   closed the connection) or `.failed` (reset, or idle for the request's timeout);
    /// - after any other status: that response's body, de-framed (`Content-Length`, chunked,
    ///   or up to the close) as `.body`, then `.end`.
    ///
    /// On the returned transfer, `sendBody` carries the client's bytes to the upstream (after a
    /// `101`; `.bodyConsumed` reports them written; bytes sent earlier wait for the 101, and are
    /// dropped, reported consumed, after any other answer), `endBody` passes the client's end on
    /// (the connection's write side is shut once the bytes before it are written), `consumed` and
    /// `setClientWritable` are the same credit as for a response body, and `cancel` closes the
    /// upstream connection. A tunnel idle for its `idleTimeoutMilliseconds` (no byte either way,
    /// not counting time paused by the client's backpressure) fails with kind `.timeout`.
    func startTunnel(
        _ request: TunnelRequest, on eventLoop: any EventLoop,
        handler: @escaping @Sendable (UpstreamEvent) -> Void
    ) -> any UpstreamTransfer
}
