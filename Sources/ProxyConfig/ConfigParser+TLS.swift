/// The `tls { }` block, `listen … tls`, and the TLS directives of an upstream block.
/// Only text is checked here; whether the files can be read and belong together is checked
/// by the caller after loading (module ProxyTLS), at the positions kept in `ConfFile`.
extension ConfigParser {
    // MARK: - tls { }

    mutating func handleTLS(_ statement: Statement) {
        guard statement.blockOpen != nil else {
            tlsWithoutBlock = true
            sink.error(
                "tls needs a block: tls { certificate PATH; key PATH }", at: statement.name.location)
            return
        }
        if let extra = statement.arguments.first {
            sink.error("tls { … } takes no arguments; remove \(quoted(extra.text))", at: extra.location)
        }
        var applies = true
        if let first = tlsBlockLocation {
            sink.error(
                "tls { … } is already given on line \(first.line); merge the two blocks", at: statement.name.location)
            applies = false
        } else {
            tlsBlockLocation = statement.name.location
        }
        currentTLS = TLSBuilder(keyword: statement.name.location, applies: applies)
        openFrame(.tls, statement: statement)
    }

    mutating func handleTLSBlock(_ statement: Statement) {
        guard var builder = currentTLS else { return }
        defer { currentTLS = builder }
        let name = statement.directive
        switch name {
        case "certificate", "key":
            let usage =
                name == "key" ? "key /etc/cors-proxy/tls/privkey.pem" : "certificate /etc/cors-proxy/tls/fullchain.pem"
            guard refuseBlock(statement), once(statement, in: &builder.seen), arity(statement, 1, usage: usage),
                let file = confFile(statement.arguments[0], directive: name)
            else {
                builder.failed.insert(name)
                return
            }
            if name == "key" { builder.key = file } else { builder.certificate = file }
        case "http2":
            guard refuseBlock(statement), once(statement, in: &builder.seen), arity(statement, 1, usage: "http2 off")
            else { return }
            builder.http2 = value(Units.onOff(statement.arguments[0].text, directive: name), statement.arguments[0])
        case "min_version":
            guard refuseBlock(statement), once(statement, in: &builder.seen),
                arity(statement, 1, usage: "min_version 1.3")
            else { return }
            let token = statement.arguments[0]
            if let version = MinimumTLSVersion(rawValue: token.text) {
                builder.minimumVersion = version
            } else if !token.poisoned {
                sink.error("min_version takes 1.2 or 1.3, not \(quoted(token.text))", at: token.location)
            }
        case "tls":
            refuse(statement, "tls { … } blocks do not nest; write the directives directly")
        case let name where DirectiveNames.topLevel.contains(name):
            refuse(statement, "\(name) is not allowed inside tls { … }; move it to the top level")
        case let name where DirectiveNames.all.contains(name):
            refuse(
                statement,
                "\(name) is not allowed inside tls { … }, which holds certificate, key, http2 and min_version")
        default:
            refuse(statement, unknown(statement, expected: DirectiveNames.tlsBlock))
        }
    }

    mutating func finishTLS(_ builder: TLSBuilder) {
        if builder.certificate == nil && !builder.failed.contains("certificate") {
            sink.error(
                "tls { … } has no certificate; add certificate PATH (PEM: the leaf first, then the intermediates)",
                at: builder.keyword)
        }
        if builder.key == nil && !builder.failed.contains("key") {
            sink.error("tls { … } has no key; add key PATH (the certificate's private key, PEM)", at: builder.keyword)
        }
        guard builder.applies, let certificate = builder.certificate, let key = builder.key else { return }
        tlsSettings = ServerTLSSettings(
            certificate: certificate, key: key, http2: builder.http2 ?? true,
            minimumVersion: builder.minimumVersion ?? .tls12, position: position(builder.keyword))
    }

    /// `listen … tls` needs the block; the block without a TLS listener serves nothing.
    mutating func checkTLSListeners() {
        // A `tls` written without its block was reported already.
        if tlsBlockLocation == nil && !tlsWithoutBlock {
            for location in tlsListens {
                sink.error(
                    "listen … tls needs a top-level tls { certificate PATH; key PATH } block; add one, or remove tls",
                    at: location)
            }
        } else if let block = tlsBlockLocation, tlsListens.isEmpty {
            sink.warning(
                "tls { … } has no effect: no listen directive has tls; add one (listen 0.0.0.0:8443 tls) or remove the block",
                at: block)
        }
    }

    // MARK: - Upstream TLS directives

    /// `ca_file`, `tls_verify`, `client_certificate`, `client_key` inside `upstream NAME { … }`.
    mutating func handleUpstreamTLSDirective(_ statement: Statement, _ builder: inout UpstreamBuilder) {
        let name = statement.directive
        builder.tlsDirectives.append((name, statement.name.location))
        let usage: String
        switch name {
        case "ca_file": usage = "ca_file /etc/cors-proxy/internal-ca.pem"
        case "client_certificate": usage = "client_certificate /etc/cors-proxy/client.pem"
        case "client_key": usage = "client_key /etc/cors-proxy/client.key"
        default: usage = "tls_verify on"
        }
        guard refuseBlock(statement), once(statement, in: &builder.seen), arity(statement, 1, usage: usage) else {
            return
        }
        let token = statement.arguments[0]
        switch name {
        case "tls_verify":
            guard let verify = value(Units.onOff(token.text, directive: name), token) else { return }
            if !verify { builder.verifyOff = token.location }
        case "ca_file":
            builder.caFile = confFile(token, directive: name)
        case "client_certificate":
            builder.clientCertificate = confFile(token, directive: name)
        default:
            builder.clientKey = confFile(token, directive: name)
        }
    }

    /// The upstream's TLS settings once its URL is known: refused on `http://`, the client
    /// pair complete, and `tls_verify off` warned about.
    mutating func finishUpstreamTLS(_ builder: UpstreamBuilder, _ config: inout UpstreamConfig) {
        guard config.scheme == .https else {
            for (name, location) in builder.tlsDirectives {
                sink.error(
                    "\(name) applies only to https:// upstreams, and upstream \(builder.name) is \(config.urlPrefix); remove \(name) or use an https:// URL",
                    at: location)
            }
            return
        }
        var settings = UpstreamTLSSettings(caFile: builder.caFile, verify: builder.verifyOff == nil)
        switch (builder.clientCertificate, builder.clientKey) {
        case (let certificate?, let key?):
            settings.clientIdentity = ClientIdentity(certificate: certificate, key: key)
        case (.some, nil):
            // A client_key written but refused was reported already.
            if let location = builder.seen["client_certificate"], builder.seen["client_key"] == nil {
                sink.error(
                    "client_certificate needs client_key: add client_key PATH (the client certificate's private key, PEM)",
                    at: location)
            }
        case (nil, .some):
            if let location = builder.seen["client_key"], builder.seen["client_certificate"] == nil {
                sink.error(
                    "client_key needs client_certificate: add client_certificate PATH (PEM), or remove client_key",
                    at: location)
            }
        case (nil, nil):
            break
        }
        if let off = builder.verifyOff {
            sink.warning(
                "tls_verify off: the upstream's certificate and host name are not checked, so anyone on the network path can pose as it; give its CA with ca_file instead",
                at: off)
        }
        config.tls = settings
    }

    // MARK: - Paths

    /// A file argument, resolved against the conf's directory; nil (reported) when empty.
    mutating func confFile(_ token: Token, directive: String) -> ConfFile? {
        if token.poisoned { return nil }
        guard !token.text.isEmpty, !token.text.utf8.contains(0) else {
            sink.error("\(directive) needs a file path, not an empty word", at: token.location)
            return nil
        }
        return ConfFile(path: ConfFile.resolve(token.text, confPath: path), position: position(token.location))
    }
}
