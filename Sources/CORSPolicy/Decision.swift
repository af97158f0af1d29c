import HeaderFields

/// The listener's scheme, for same-origin detection and `X-Forwarded-Proto`.
package enum Scheme: String, Sendable, Hashable {
    case http, https
}

/// What the decision needs to know about a request; no I/O, no parsing of bodies.
package struct RequestFacts: Sendable {
    package var method: String
    /// The request target before `?`, as received.
    package var path: Substring
    /// Every `Origin` header line, as received (empty lines count as absent).
    package var origins: [String]
    /// `Access-Control-Request-Method`, if present.
    package var requestMethod: String?
    /// Every `Access-Control-Request-Headers` line, unsplit.
    package var requestHeaders: [String]
    /// `Access-Control-Request-Private-Network: true` was sent.
    package var privateNetwork: Bool
    /// The request's `Host`, as received.
    package var host: String?
    /// The listener's scheme.
    package var scheme: Scheme

    package init(
        method: String, path: Substring, origins: [String] = [], requestMethod: String? = nil,
        requestHeaders: [String] = [], privateNetwork: Bool = false, host: String? = nil, scheme: Scheme = .http
    ) {
        self.method = method
        self.path = path
        self.origins = origins
        self.requestMethod = requestMethod
        self.requestHeaders = requestHeaders
        self.privateNetwork = privateNetwork
        self.host = host
        self.scheme = scheme
    }
}

/// The stable reason codes (docs/DESIGN.md, "Denials"): logs, metrics and `explain` show the raw
/// values, so they are part of the interface: never rename.
package enum DenialReason: String, Sendable, Hashable, CaseIterable {
    case originNotAllowed = "origin_not_allowed"
    case malformedOrigin = "malformed_origin"
    case multipleOrigins = "multiple_origins"
    case methodNotAllowed = "method_not_allowed"
    case headerNotAllowed = "header_not_allowed"
    case requestHeadersTooLarge = "request_headers_too_large"
    case privateNetworkNotAllowed = "private_network_not_allowed"
}

/// Why a request was denied (or would have been, under `enforce report|off`).
package struct Denial: Sendable, Hashable {
    package var reason: DenialReason
    /// The reason in words, e.g. `origin https://evil.example is not in allow_origin for route /api/`.
    package var detail: String
    package init(_ reason: DenialReason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }
}

/// The metric label `outcome` of `cors_proxy_requests_total`.
package enum Outcome: Sendable, Hashable {
    case allowed
    case denied(Denial)
    case reported(Denial)
    /// `enforce off`: forwarded without a warning, but still counted as a denial.
    case unenforced(Denial)
    case sameOrigin
    case noOrigin
    case passthrough
    case noRoute

    /// The label value (docs/DESIGN.md, "Metrics"): `reported` covers `enforce off` too.
    package var label: String {
        switch self {
        case .allowed: return "allowed"
        case .denied: return "denied"
        case .reported, .unenforced: return "reported"
        case .sameOrigin: return "same_origin"
        case .noOrigin: return "no_origin"
        case .passthrough: return "passthrough"
        case .noRoute: return "no_route"
        }
    }

    package var denial: Denial? {
        switch self {
        case .denied(let d), .reported(let d), .unenforced(let d): return d
        default: return nil
        }
    }
}

/// The request kind label: `preflight` or `actual`.
package enum RequestKind: String, Sendable, Hashable {
    case preflight, actual
    /// A WebSocket handshake (only its origin is checked).
    case websocket
}

/// What the server does with a request. Computed without I/O; the server
/// executes it and `explain` prints it.
package enum Decision: Sendable, Equatable {
    /// `cors off`: forward, touch no `Access-Control-*` header.
    case passThrough
    /// Answer locally: the status, these headers, an empty body.
    case preflight(status: Int, headers: [HeaderField])
    /// Forward upstream. Remove the upstream's `Access-Control-*` headers when
    /// `stripUpstreamCORS`, add `addHeaders`, and merge `Origin` into `Vary` when
    /// `varyOrigin`. `addHeaders` (plus `Vary`) also go on the proxy's own
    /// 502/504/413/400/431 answers for this request.
    case forward(addHeaders: [HeaderField], stripUpstreamCORS: Bool, varyOrigin: Bool, outcome: Outcome)
    /// Answer locally with `status` (403, or 404 when no route matched), these
    /// headers and an empty body. `denial` is nil for the 404.
    case deny(status: Int, headers: [HeaderField], denial: Denial?)
}
