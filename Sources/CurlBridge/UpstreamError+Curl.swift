import CCurl
import HeaderFields
import Upstream

extension UpstreamError {
    /// Maps a finished transfer's curl result to the error the server reports
    /// (`.connect` and `.tls` -> 502 before the head, `.timeout` -> 504, `.reset` -> 502 or a
    /// cut response). `detail` is curl's error text: it tells a TLS alert from a plain reset.
    package static func kind(forCurlCode code: Int32, detail: String) -> Kind {
        switch CURLcode(rawValue: UInt32(bitPattern: code)) {
        // Nothing reached the upstream: name, route, refusal, or a URL curl cannot use.
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT,
            CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT, CURLE_INTERFACE_FAILED, CURLE_FAILED_INIT,
            CURLE_OUT_OF_MEMORY:
            return .connect
        // The TLS handshake failed: an untrusted certificate, a name mismatch, an alert, or our
        // own CA file or client certificate unusable at connect time.
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
            CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED,
            CURLE_SSL_ENGINE_INITFAILED, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ISSUER_ERROR,
            CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CLIENTCERT:
            return .tls
        // Under TLS 1.3 the server checks the client certificate after the client finished
        // its handshake: a refusal is an alert that curl meets reading or writing the request
        // ("OpenSSL SSL_read: error:0A00045C:SSL routines::tlsv13 alert certificate
        // required"). A TCP reset or an unclean close has no "alert" in its text.
        case CURLE_RECV_ERROR where isTLSAlert(detail), CURLE_SEND_ERROR where isTLSAlert(detail):
            return .tls
        // Only CONNECTTIMEOUT_MS is set (never TIMEOUT_MS), so curl times out only while connecting.
        case CURLE_OPERATION_TIMEDOUT:
            return .timeout
        // Everything else broke an established exchange: RECV_ERROR, SEND_ERROR, GOT_NOTHING,
        // PARTIAL_FILE, WEIRD_SERVER_REPLY, HTTP2, SEND_FAIL_REWIND, BAD_CONTENT_ENCODING, ...
        default:
            return .reset
        }
    }

    /// The error for a transfer curl finished with `code`; `detail` is the error buffer's text.
    package init(curlCode code: Int32, detail: String) {
        self.init(kind: Self.kind(forCurlCode: code, detail: detail), curlCode: code, detail: detail)
    }

    /// OpenSSL's text for an alert received from the peer, e.g. `tlsv13 alert certificate
    /// required`, `sslv3 alert bad certificate`, `tlsv1 alert unknown ca`.
    static func isTLSAlert(_ detail: String) -> Bool {
        detail.contains("SSL") && detail.contains(" alert ")
    }

    /// Our own idle deadline passed: no upstream byte for `milliseconds` while not paused.
    static func idleTimeout(milliseconds: Int) -> UpstreamError {
        UpstreamError(
            kind: .timeout, curlCode: Int32(bitPattern: CURLE_OPERATION_TIMEDOUT.rawValue),
            detail: "no data from the upstream for \(milliseconds) ms")
    }

    /// A tunnel's idle deadline passed: no byte either way for `milliseconds` while not paused.
    static func tunnelIdle(milliseconds: Int) -> UpstreamError {
        UpstreamError(
            kind: .timeout, curlCode: Int32(bitPattern: CURLE_OPERATION_TIMEDOUT.rawValue),
            detail: "no data through the tunnel, either way, for \(milliseconds) ms")
    }

    /// A tunnel's `curl_easy_send` or `curl_easy_recv` failed: the connection was made, so
    /// whatever curl says, it broke after (`.reset`, or `.tls` for a TLS alert where mapped).
    static func tunnelBroken(curlCode code: CURLcode, detail: String) -> UpstreamError {
        var error = UpstreamError(curlCode: Int32(bitPattern: code.rawValue), detail: detail)
        if error.kind == .connect || error.kind == .timeout { error.kind = .reset }
        return error
    }

    /// The worker stopped before the exchange finished.
    static func shuttingDown(started: Bool) -> UpstreamError {
        UpstreamError(
            kind: started ? .reset : .connect, curlCode: 0,
            detail: "the upstream client is shutting down")
    }
}
