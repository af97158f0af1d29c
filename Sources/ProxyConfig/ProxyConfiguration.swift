import CORSPolicy

/// A loaded, validated conf: everything the server and `check`/`explain` need.
package struct ProxyConfiguration: Sendable, Hashable {
    /// Browser-facing listeners, in conf order (at least one).
    package var listen: [ListenAddress]
    /// The optional admin listener (`/healthz`, `/readyz`, `/metrics`).
    package var admin: ListenAddress?
    /// `self_origin` values, normalised serialized origins.
    package var selfOrigins: Set<String>
    /// Upstreams by name.
    package var upstreams: [String: UpstreamConfig]
    /// Top-level `max_body_size`, default 100 MiB; 0 = no limit.
    package var maxBodySize: Int64
    /// `drain_timeout`, default 10s.
    package var drainTimeoutMilliseconds: Int64
    /// `log_format`, default `text`.
    package var logFormat: LogFormat
    /// The top-level `cors {}` with defaults applied (also used for the no-route 404).
    package var defaultCORS: CORSSettings
    /// The routes, sorted for matching.
    package var routes: RouteTable
    /// The `tls { }` block; present whenever a `listen … tls` is.
    package var tls: ServerTLSSettings?

    /// Default `max_body_size`: 100m.
    package static let defaultMaxBodySize: Int64 = 100 << 20
    /// `log_format text|json`: how the lines the proxy writes while serving look
    /// (docs/CONFIG.md, "Log lines").
    package enum LogFormat: String, Sendable, Hashable, CaseIterable {
        case text, json
    }

    /// Default `drain_timeout`: 10s.
    package static let defaultDrainTimeoutMilliseconds: Int64 = 10_000

    /// Parses and validates conf text. Never traps on any input.
    package static func load(text: String, path: String, environment: [String: String]) -> LoadResult {
        ProxyConfig.load(text: text, path: path, environment: environment)
    }
}

/// The outcome of loading a conf: the configuration when there is no error,
/// and every diagnostic (errors and warnings) in source order.
package struct LoadResult: Sendable {
    /// nil when any diagnostic is an error.
    package var configuration: ProxyConfiguration?
    /// All errors and warnings, in source order.
    package var diagnostics: [Diagnostic]
    /// The TLS files the conf names, also when it has errors (their checks read files, so
    /// they run outside this module: ProxyTLS).
    package var tlsFiles: TLSFileReferences

    /// A result as the loader makes it (also used for a file that cannot be read).
    package init(
        configuration: ProxyConfiguration?, diagnostics: [Diagnostic], tlsFiles: TLSFileReferences = .init()
    ) {
        self.configuration = configuration
        self.diagnostics = diagnostics
        self.tlsFiles = tlsFiles
    }

    /// The errors only.
    package var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }
    /// The warnings only.
    package var warnings: [Diagnostic] { diagnostics.filter { $0.severity == .warning } }
}

/// Parses and validates conf text (input is text and environment; no file I/O).
/// `path` is only used in diagnostics.
package func load(text: String, path: String, environment: [String: String]) -> LoadResult {
    var parser = ConfigParser(text: text, environment: environment, path: path)
    let configuration = parser.run()
    let diagnostics = parser.sink.resolve(text: text, path: path)
    return LoadResult(
        configuration: parser.sink.errorCount == 0 ? configuration : nil, diagnostics: diagnostics,
        tlsFiles: parser.tlsFiles)
}
