/// `enforce on|report|off`: what happens to a disallowed actual request.
package enum Enforcement: String, Sendable, Hashable, CaseIterable {
    case on, report, off
}

/// A token list that may be `*` (methods, headers, expose headers).
package enum TokenList: Hashable, Sendable {
    case any
    case list([String])

    package var isAny: Bool { if case .any = self { return true } else { return false } }
}

/// The effective CORS settings of one route, after inheritance from `cors {}`.
/// Values as the conf wrote them; `CompiledPolicy` precomputes from this.
package struct CORSSettings: Hashable, Sendable {
    package var allowOrigin: [OriginEntry] = []
    package var allowMethods: TokenList = .list(["GET", "HEAD", "POST"])
    package var allowHeaders: TokenList = .list([])
    package var exposeHeaders: TokenList = .list([])
    package var allowCredentials = false
    /// `max_age` in milliseconds; nil sends no `Access-Control-Max-Age`.
    package var maxAgeMilliseconds: Int64? = nil
    package var allowPrivateNetwork = false
    package var enforce: Enforcement = .on
    /// 204 or 200.
    package var preflightStatus = 204
    /// `websocket on|off`: whether a WebSocket handshake on this route is checked against
    /// `allow_origin` and tunnelled (on), or answered 501 (off). Browsers apply no CORS to
    /// WebSocket, so this origin check is the only guard against cross-site socket hijacking.
    package var websocket = true

    package init() {}

    /// `allow_origin` is exactly `*` (or `*` among others, which is the same):
    /// responses do not vary by origin.
    package var allowsAnyOrigin: Bool { allowOrigin.contains(.any) }
}
