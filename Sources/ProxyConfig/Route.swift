import CORSPolicy

/// How a route's path is compared with the request path.
package enum RouteKind: String, Sendable, Hashable {
    /// `route = PATH`: the whole path, byte for byte.
    case exact
    /// `route PREFIX`: the longest matching prefix wins.
    case prefix
}

/// One `route` block with everything inherited resolved.
package struct Route: Sendable, Hashable {
    /// Exact or prefix.
    package var kind: RouteKind
    /// The path or prefix as written.
    package var path: String
    /// The upstream requests are forwarded to.
    package var upstream: UpstreamConfig
    /// Effective CORS settings; nil for `cors off` (pass-through).
    package var cors: CORSSettings?
    /// Largest request body accepted, limit included; 0 = no limit.
    package var maxBodySize: Int64
    /// `preserve_host on`: send the request's `Host` upstream.
    package var preserveHost: Bool
    /// `strip_prefix`, removed from the request path when it matches.
    package var stripPrefix: String?
    /// Line of the `route` keyword, for diagnostics and `check`.
    package var line: Int

    /// Creates a route (the loader is the usual source; tests may build their own).
    package init(
        kind: RouteKind, path: String, upstream: UpstreamConfig, cors: CORSSettings?, maxBodySize: Int64,
        preserveHost: Bool = false, stripPrefix: String? = nil, line: Int = 0
    ) {
        self.kind = kind
        self.path = path
        self.upstream = upstream
        self.cors = cors
        self.maxBodySize = maxBodySize
        self.preserveHost = preserveHost
        self.stripPrefix = stripPrefix
        self.line = line
    }

    /// The pattern as written: `/api/` or `= /healthz` (metrics label, logs, `check`).
    package var label: String { kind == .exact ? "= \(path)" : path }

    /// Whether this route's pattern covers `path` (before `?`, as received).
    package func matches(_ requestPath: Substring) -> Bool {
        Self.matches(kind: kind, path: path, requestPath)
    }

    /// `matches` on a route's two fields: the data path keeps them beside the route, so a
    /// lookup does not copy the whole `Route` (and retain its strings) per candidate.
    package static func matches(kind: RouteKind, path: String, _ requestPath: Substring) -> Bool {
        switch kind {
        case .exact: return requestPath.utf8.elementsEqual(path.utf8)
        case .prefix: return prefixMatches(path, requestPath)
        }
    }

    /// The path to request upstream (docs/CONFIG.md §5, "Forwarded URL"): base path, then the
    /// request path with `strip_prefix` removed when it matches (`/` if nothing
    /// is left). The caller prepends `upstream.urlPrefix`'s scheme and authority
    /// as it needs and appends `?query`.
    package func forwardPath(path requestPath: Substring) -> String {
        Self.forwardPath(basePath: upstream.basePath, stripPrefix: stripPrefix, path: requestPath)
    }

    /// `forwardPath` on the two fields it reads (see `matches(kind:path:_:)` for why).
    package static func forwardPath(basePath: String, stripPrefix: String?, path requestPath: Substring) -> String {
        var rest = requestPath
        if let stripPrefix, prefixMatches(stripPrefix, requestPath) {
            let utf8 = requestPath.utf8
            rest = Substring(utf8[utf8.index(utf8.startIndex, offsetBy: stripPrefix.utf8.count)...])
        }
        if rest.isEmpty { return basePath + "/" }
        // `strip_prefix /api/` leaves `users`: keep the path absolute rather than
        // gluing it to the base path (`/v1users`).
        if !rest.utf8.starts(with: "/".utf8) { return basePath + "/" + rest }
        return basePath + rest
    }
}

/// The prefix rule (docs/CONFIG.md §5, "Matching"): a prefix ending in `/` matches what starts with it; one
/// without (`/api`) matches itself and what continues with `/`, never `/apiary`.
/// Compared as bytes: no decoding, no Unicode equivalence.
@inline(__always)
func prefixMatches(_ prefix: String, _ path: Substring) -> Bool {
    let prefixBytes = prefix.utf8
    let pathBytes = path.utf8
    guard pathBytes.starts(with: prefixBytes) else { return false }
    if prefixBytes.last == UInt8(ascii: "/") { return true }
    let next = pathBytes.index(pathBytes.startIndex, offsetBy: prefixBytes.count)
    return next == pathBytes.endIndex || pathBytes[next] == UInt8(ascii: "/")
}
