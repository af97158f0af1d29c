/// Where a value was written in the conf, resolved to a line and column: for problems found
/// after parsing, such as a file the conf names that cannot be read.
package struct ConfPosition: Sendable, Hashable {
    /// The conf path as the user gave it.
    package var file: String
    /// 1-based line.
    package var line: Int
    /// 1-based column, counted in Characters like every diagnostic's.
    package var column: Int

    /// Creates a position (the parser is the usual source; tests may build their own).
    package init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// A diagnostic at this position.
    package func diagnostic(_ severity: Severity, _ message: String) -> Diagnostic {
        Diagnostic(file: file, line: line, column: column, severity: severity, message: message)
    }
}

/// A file the conf names: the path to open, and where its argument was written.
package struct ConfFile: Sendable, Hashable {
    /// The path to open: as written when absolute, else resolved against the conf file's
    /// directory (as nginx does), so the conf means the same whatever the working directory.
    package var path: String
    /// The argument's position, where a problem with the file is reported.
    package var position: ConfPosition

    /// Creates a reference to `path`, written at `position`.
    package init(path: String, position: ConfPosition) {
        self.path = path
        self.position = position
    }

    /// `written` resolved against the directory of `confPath` when relative.
    static func resolve(_ written: String, confPath: String) -> String {
        guard !written.hasPrefix("/"), let slash = confPath.lastIndex(of: "/") else { return written }
        return String(confPath[...slash]) + written
    }
}

/// `min_version` of the `tls { }` block.
package enum MinimumTLSVersion: String, Sendable, Hashable {
    case tls12 = "1.2"
    case tls13 = "1.3"
}

/// The top-level `tls { }` block: what the `listen … tls` listeners serve.
package struct ServerTLSSettings: Sendable, Hashable {
    /// `certificate`: PEM, the leaf first, then the intermediates.
    package var certificate: ConfFile
    /// `key`: the leaf's private key, PEM (RSA or EC, PKCS#8 or traditional).
    package var key: ConfFile
    /// `http2 on|off` (default on): ALPN offers `h2` then `http/1.1`, or only `http/1.1`.
    package var http2: Bool
    /// `min_version` (default 1.2).
    package var minimumVersion: MinimumTLSVersion
    /// The `tls` keyword.
    package var position: ConfPosition

    /// Creates the settings with the defaults for what the block leaves out.
    package init(
        certificate: ConfFile, key: ConfFile, http2: Bool = true, minimumVersion: MinimumTLSVersion = .tls12,
        position: ConfPosition
    ) {
        self.certificate = certificate
        self.key = key
        self.http2 = http2
        self.minimumVersion = minimumVersion
        self.position = position
    }

    /// ALPN protocols offered, most preferred first.
    package var applicationProtocols: [String] { http2 ? ["h2", "http/1.1"] : ["http/1.1"] }
}

/// A client certificate and its key, for mutual TLS towards an upstream (always both).
package struct ClientIdentity: Sendable, Hashable {
    /// `client_certificate`: PEM.
    package var certificate: ConfFile
    /// `client_key`: PEM.
    package var key: ConfFile

    /// Creates the pair.
    package init(certificate: ConfFile, key: ConfFile) {
        self.certificate = certificate
        self.key = key
    }
}

/// An `https://` upstream's TLS settings.
package struct UpstreamTLSSettings: Sendable, Hashable {
    /// `ca_file`: trust only these CAs; nil trusts the system's store.
    package var caFile: ConfFile?
    /// `tls_verify` (default on): check the certificate chain and the host name.
    package var verify: Bool
    /// `client_certificate` + `client_key`; nil sends no client certificate.
    package var clientIdentity: ClientIdentity?

    /// The defaults: the system's CAs, verification on, no client certificate.
    package init(caFile: ConfFile? = nil, verify: Bool = true, clientIdentity: ClientIdentity? = nil) {
        self.caFile = caFile
        self.verify = verify
        self.clientIdentity = clientIdentity
    }
}

/// The TLS files a conf names, for the checks that read them (module ProxyTLS). Filled even
/// when the conf has errors, so one run reports the conf's problems and the files' together.
package struct TLSFileReferences: Sendable, Hashable {
    /// The `tls { }` block, when it names both its files.
    package var server: ServerTLSSettings?
    /// The TLS settings of each `https://` upstream, by upstream name.
    package var upstreams: [String: UpstreamTLSSettings]

    /// Creates the references.
    package init(server: ServerTLSSettings? = nil, upstreams: [String: UpstreamTLSSettings] = [:]) {
        self.server = server
        self.upstreams = upstreams
    }
}
