import CORSPolicy

extension ProxyConfiguration {
    /// The resolved rules table `cors-proxy check` prints: listeners, upstreams,
    /// the `cors {}` defaults, then every route in match order with its
    /// effective settings. Stable text (sorted, fixed columns) for golden tests.
    package func checkTable() -> String {
        var lines: [String] = []
        func row(_ name: String, _ value: String, indent: String = "") {
            lines.append(indent + name.padded(to: indent.isEmpty ? 15 : 23) + value)
        }
        for address in listen { row("listen", address.description + (address.tls ? " tls" : "")) }
        row("admin", admin?.description ?? "(none)")
        row("self_origin", selfOrigins.isEmpty ? "(none)" : selfOrigins.sorted().joined(separator: " "))
        row("max_body_size", formatBodySize(maxBodySize))
        row("drain_timeout", Units.formatDuration(drainTimeoutMilliseconds))
        row("log_format", logFormat.rawValue)
        if let tls {
            row(
                "tls",
                "certificate \(tls.certificate.path)  key \(tls.key.path)  http2 \(tls.http2 ? "on" : "off")  min_version \(tls.minimumVersion.rawValue)"
            )
        }
        lines.append("")
        for name in upstreams.keys.sorted() {
            guard let upstream = upstreams[name] else { continue }
            var line =
                "upstream \(name)  \(upstream.urlPrefix)  connect_timeout \(Units.formatDuration(upstream.connectTimeoutMilliseconds))  timeout \(Units.formatDuration(upstream.timeoutMilliseconds))"
            if let tls = upstream.tls {
                line += "  ca_file \(tls.caFile?.path ?? "(system)")  tls_verify \(tls.verify ? "on" : "off")"
                if let identity = tls.clientIdentity {
                    line += "  client_certificate \(identity.certificate.path)  client_key \(identity.key.path)"
                }
            }
            lines.append(line)
        }
        if !upstreams.isEmpty { lines.append("") }
        lines.append("cors { }  (defaults; also used for the no-route 404)")
        lines.append(contentsOf: Self.corsRows(defaultCORS))
        for route in routes.matchOrder {
            lines.append("")
            lines.append("route \(route.label)  (line \(route.line))")
            row("upstream", "\(route.upstream.name)  \(route.upstream.urlPrefix)", indent: "  ")
            row("strip_prefix", route.stripPrefix ?? "(none)", indent: "  ")
            row("preserve_host", route.preserveHost ? "on" : "off", indent: "  ")
            row("max_body_size", formatBodySize(route.maxBodySize), indent: "  ")
            if let cors = route.cors {
                lines.append(contentsOf: Self.corsRows(cors))
            } else {
                row("cors", "off (pass-through)", indent: "  ")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func corsRows(_ settings: CORSSettings) -> [String] {
        func row(_ name: String, _ value: String) -> String { "  " + name.padded(to: 23) + value }
        func list(_ tokens: TokenList) -> String {
            switch tokens {
            case .any: return "*"
            case .list(let items): return items.isEmpty ? "(none)" : items.joined(separator: " ")
            }
        }
        return [
            row(
                "allow_origin",
                settings.allowOrigin.isEmpty
                    ? "(none: no origin allowed)" : settings.allowOrigin.map(\.description).joined(separator: " ")),
            row("allow_methods", list(settings.allowMethods)),
            row("allow_headers", list(settings.allowHeaders)),
            row("expose_headers", list(settings.exposeHeaders)),
            row("allow_credentials", settings.allowCredentials ? "on" : "off"),
            row("max_age", settings.maxAgeMilliseconds.map(Units.formatDuration) ?? "(unset)"),
            row("allow_private_network", settings.allowPrivateNetwork ? "on" : "off"),
            row("enforce", settings.enforce.rawValue),
            row("preflight_status", String(settings.preflightStatus)),
            row("websocket", settings.websocket ? "on" : "off"),
        ]
    }
}

private func formatBodySize(_ bytes: Int64) -> String {
    bytes == 0 ? "0 (no limit)" : Units.formatSize(bytes)
}

extension String {
    fileprivate func padded(to width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
