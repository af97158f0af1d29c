import CORSPolicy

extension ConfigParser {
    /// Whole-conf checks after the last token; builds the configuration.
    mutating func finish() -> ProxyConfiguration? {
        if listen.isEmpty {
            // "No listen" has no token to point at: we point at line 1, column 1,
            // where a reader starts looking for it.
            sink.error("no listen directive; add one, e.g. listen 0.0.0.0:8080", at: .start)
        }
        checkTLSListeners()
        if let admin, admin.address.port != 0, listen.contains(where: { $0.address.sameSocket(as: admin.address) }) {
            sink.error(
                "admin \(admin.address) is also a listen address; give the admin listener its own port",
                at: admin.location)
        }

        let defaultSettings = effectiveSettings(route: nil)
        let bodyLimit = maxBodySize ?? ProxyConfiguration.defaultMaxBodySize
        var built: [Route] = []
        for builder in routes {
            guard let (name, location) = builder.upstream else { continue }
            guard let upstream = upstreams[name] else {
                if declaredUpstreams[name] == nil {
                    sink.error(
                        "upstream \(quoted(name)) is not defined; add upstream \(name) http://HOST:PORT at the top level",
                        at: location)
                }
                continue
            }
            let cors: CORSSettings? = builder.corsOff == nil ? effectiveSettings(route: builder.cors) : nil
            if let cors { warnAboutWebSocketFromAnyOrigin(builder, cors) }
            built.append(
                Route(
                    kind: builder.kind, path: builder.path, upstream: upstream, cors: cors,
                    maxBodySize: builder.maxBodySize ?? bodyLimit, preserveHost: builder.preserveHost ?? false,
                    stripPrefix: builder.stripPrefix, line: builder.keyword.line))
        }
        warnAboutUnreachableRoutes()

        guard sink.errorCount == 0 else { return nil }
        return ProxyConfiguration(
            listen: listen.map(\.address), admin: admin?.address, selfOrigins: selfOrigins, upstreams: upstreams,
            maxBodySize: bodyLimit,
            drainTimeoutMilliseconds: drainTimeout ?? ProxyConfiguration.defaultDrainTimeoutMilliseconds,
            logFormat: logFormat ?? .text,
            defaultCORS: defaultSettings, routes: RouteTable(built), tls: tlsSettings)
    }

    /// Browsers apply no CORS to WebSocket and send cookies with the handshake, so on a route
    /// that tunnels WebSocket, `allow_origin *` lets any site open a socket as the user. The
    /// warning points into the block that caused it: the route's own `*`; else the route's
    /// own `websocket on` over a `*` from `cors { }`; else that inherited `*` (reported once
    /// however many routes inherit it).
    private mutating func warnAboutWebSocketFromAnyOrigin(_ route: RouteBuilder, _ settings: CORSSettings) {
        // With credentials on, a `*` is refused already: no warning on top of the error.
        guard settings.websocket, settings.allowsAnyOrigin, !settings.allowCredentials else { return }
        let advice = "browsers apply no CORS to WebSocket, so the origin check is the only guard"
        if let own = route.cors.lists[.allowOrigin] {
            guard let star = own.star else { return }
            sink.warning(
                "'*' in allow_origin lets every site open a WebSocket here that carries the user's cookies (\(advice)); list the origins, or write websocket off",
                at: star)
        } else if let websocket = route.cors.websocket, let star = defaultCORS.lists[.allowOrigin]?.star {
            sink.warning(
                "websocket on with '*' in allow_origin inherited from cors { } (line \(star.line)) lets every site open a WebSocket here that carries the user's cookies (\(advice)); list the origins in this route, or write websocket off",
                at: websocket.location)
        } else if let star = defaultCORS.lists[.allowOrigin]?.star {
            sink.warning(
                "'*' in allow_origin lets every site open a WebSocket here that carries the user's cookies (\(advice)); list the origins, or write websocket off",
                at: star)
        }
    }

    /// A prefix route `P` without a trailing `/` matches `P` and `P/…`. When
    /// `route P/` exists it takes every `P/…` (longer prefix), and when
    /// `route = P` exists it takes `P` (exact beats prefix): then `P` can never
    /// match. No other combination makes a route dead: exact routes always win
    /// their path, and a prefix ending in `/` always wins its own path unless an
    /// exact route takes it, while the paths under it cannot all be covered by
    /// finitely many longer prefixes.
    private mutating func warnAboutUnreachableRoutes() {
        var exact: [String: Int] = [:]
        var prefixes: [String: Int] = [:]
        for route in routes {
            switch route.kind {
            case .exact: exact[route.path] = route.keyword.line
            case .prefix: prefixes[route.path] = route.keyword.line
            }
        }
        for route in routes where route.kind == .prefix && !route.path.hasSuffix("/") {
            if let slashLine = prefixes[route.path + "/"], let exactLine = exact[route.path] {
                sink.warning(
                    "route \(route.path) can never match: route \(route.path)/ (line \(slashLine)) takes every path under \(route.path)/ and route = \(route.path) (line \(exactLine)) takes \(route.path) itself; remove it",
                    at: route.keyword)
            }
        }
    }
}
