import HeaderFields

/// A decision in one word and a reason code: what `explain`, logs and tests compare.
package enum Verdict: Hashable, Sendable, CustomStringConvertible {
    /// An allowed preflight, or an actual request forwarded with CORS headers.
    case allowed
    /// Answered 403 (`enforce on`, or any disallowed preflight).
    case denied(DenialReason)
    /// Forwarded without CORS headers under `enforce report`.
    case reported(DenialReason)
    /// Forwarded without CORS headers under `enforce off`.
    case unenforced(DenialReason)
    case sameOrigin
    case noOrigin
    case passThrough
    case noRoute

    /// The browser will let the script read the response (`explain` exits 0).
    package var isAllowed: Bool {
        switch self {
        case .allowed, .sameOrigin, .noOrigin, .passThrough: return true
        case .denied, .reported, .unenforced, .noRoute: return false
        }
    }

    /// e.g. `allowed`, `denied (origin_not_allowed)`.
    package var description: String {
        switch self {
        case .allowed: return "allowed"
        case .denied(let reason): return "denied (\(reason.rawValue))"
        case .reported(let reason): return "reported (\(reason.rawValue))"
        case .unenforced(let reason): return "unenforced (\(reason.rawValue))"
        case .sameOrigin: return "same origin"
        case .noOrigin: return "no origin"
        case .passThrough: return "pass-through"
        case .noRoute: return "no route"
        }
    }
}

extension Decision {
    /// The verdict and reason code of this decision.
    package var summary: Verdict {
        switch self {
        case .passThrough: return .passThrough
        case .preflight: return .allowed
        case .forward(_, _, _, let outcome):
            switch outcome {
            case .allowed: return .allowed
            case .denied(let denial): return .denied(denial.reason)
            case .reported(let denial): return .reported(denial.reason)
            case .unenforced(let denial): return .unenforced(denial.reason)
            case .sameOrigin: return .sameOrigin
            case .noOrigin: return .noOrigin
            case .passthrough: return .passThrough
            case .noRoute: return .noRoute
            }
        case .deny(_, _, let denial):
            return denial.map { .denied($0.reason) } ?? .noRoute
        }
    }

    /// Why the request was (or, under `enforce report|off`, would have been) denied.
    package var denial: Denial? {
        switch self {
        case .passThrough, .preflight: return nil
        case .forward(_, _, _, let outcome): return outcome.denial
        case .deny(_, _, let denial): return denial
        }
    }

    /// The status the proxy answers with itself; nil when the request is forwarded.
    package var localStatus: Int? {
        switch self {
        case .passThrough, .forward: return nil
        case .preflight(let status, _), .deny(let status, _, _): return status
        }
    }

    /// The headers the proxy adds, one `Name: value` a line, as `explain` prints
    /// them. For a forwarded request `Vary: Origin` stands for the merge into
    /// the upstream's `Vary`.
    package var responseHeaderFields: [String] {
        switch self {
        case .passThrough: return []
        case .preflight(_, let headers), .deny(_, let headers, _):
            return headers.map(\.description)
        case .forward:
            return proxyMadeResponseHeaders.map(\.description)
        }
    }

    /// The CORS headers a response the proxy makes itself for this request carries
    /// (502, 504, 413, 400, 431, 501; docs/DESIGN.md, "Proxy-made responses"): what a success would have had, with
    /// `Vary: Origin` standing alone since there is no upstream `Vary` to merge into.
    /// Empty unless the request would have been forwarded.
    package var proxyMadeResponseHeaders: [HeaderField] {
        guard case .forward(let headers, _, let varyOrigin, _) = self else { return [] }
        return varyOrigin ? headers + [HeaderField(CORSHeader.vary, "Origin")] : headers
    }
}
