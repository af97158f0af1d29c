import ArgumentParser
import ProxyConfig
import ProxyTLS

/// `--config`, shared by every subcommand.
struct ConfigOptions: ParsableArguments {
    @Option(
        name: .long,
        help: "The conf file (default: $CORS_PROXY_CONFIG, else /etc/cors-proxy/proxy.conf).")
    var config: String?

    /// `--config`, else `$CORS_PROXY_CONFIG`, else `/etc/cors-proxy/proxy.conf` (docs/CONFIG.md, "Path").
    var path: String {
        if let config { return config }
        if let env = SystemIO.environment("CORS_PROXY_CONFIG"), !env.isEmpty { return env }
        return "/etc/cors-proxy/proxy.conf"
    }

    /// Reads and loads the conf, then reads and checks the TLS files it names (certificates
    /// and keys of `tls { }` and of the upstreams): their problems are conf diagnostics, at
    /// the argument naming the file. `check`, `serve` and a SIGHUP reload all load this way.
    func load() -> LoadResult { loadChecked().result }

    /// `load()`, plus the TLS listeners' context built from the very files just checked
    /// (nil without a `tls { }` block or when there is an error).
    func loadChecked() -> CheckedConf {
        TLSFileCheck.check(loadConfOnly(), now: SystemIO.now)
    }

    /// The conf alone: no file it names is read (`explain`, which answers about CORS
    /// decisions, also on a machine without the server's certificates).
    func loadConfOnly() -> LoadResult { Self.load(path: path) }

    /// Reads and loads the conf at `path`, no file it names read. A conf file that cannot be
    /// read is reported like a conf error.
    static func load(path: String) -> LoadResult {
        let data: [UInt8]
        switch SystemIO.readFile(path) {
        case .success(let bytes):
            data = bytes
        case .failure(let failure):
            let reason: String
            switch failure {
            case .missing: reason = "does not exist"
            case .unreadable(let why): reason = "cannot be read (\(why))"
            }
            return LoadResult(
                configuration: nil,
                diagnostics: [
                    Diagnostic(
                        file: path, line: 1, column: 1, severity: .error,
                        message: "the conf file \(reason); pass --config PATH or set CORS_PROXY_CONFIG")
                ])
        }
        return ProxyConfig.load(
            text: String(decoding: data, as: UTF8.self), path: path, environment: SystemIO.environment)
    }
}

/// Writes each diagnostic to stderr, one a line.
func printDiagnostics(_ diagnostics: [Diagnostic]) {
    for diagnostic in diagnostics {
        SystemIO.writeError(diagnostic.description + "\n")
    }
}
