import CORSPolicy

/// Directive names by block, for "unknown directive" and "wrong block" messages.
enum DirectiveNames {
    static let topLevel = [
        "listen", "admin", "self_origin", "upstream", "max_body_size", "drain_timeout", "log_format", "cors", "route",
        "tls",
    ]
    static let cors = [
        "allow_origin", "allow_methods", "allow_headers", "expose_headers", "allow_credentials", "max_age",
        "allow_private_network", "enforce", "preflight_status", "websocket",
    ]
    static let upstreamTLS = ["ca_file", "tls_verify", "client_certificate", "client_key"]
    static let upstreamBlock = ["url", "connect_timeout", "timeout"] + upstreamTLS
    static let routeOnly = ["upstream", "cors", "max_body_size", "preserve_host", "strip_prefix"]
    static let route = routeOnly + cors
    static let tlsBlock = ["certificate", "key", "http2", "min_version"]
    static let all = Set(topLevel + cors + upstreamBlock + routeOnly + tlsBlock)
}

extension ConfigParser {
    mutating func handleTopLevel(_ statement: Statement) {
        switch statement.directive {
        case "listen":
            guard refuseBlock(statement) else { return }
            // `listen HOST:PORT tls`: the flag is checked first, so `listen a b` says what b may be.
            var tlsToken: Token?
            if statement.arguments.count >= 2 {
                let flag = statement.arguments[1]
                guard flag.text == "tls" else {
                    if !flag.poisoned {
                        sink.error(
                            "listen takes HOST:PORT and optionally tls, not \(quoted(flag.text)); write listen 0.0.0.0:8080 or listen 0.0.0.0:8443 tls",
                            at: flag.location)
                    }
                    return
                }
                tlsToken = flag
            }
            let usage = tlsToken == nil ? "listen 0.0.0.0:8080" : "listen 0.0.0.0:8443 tls"
            guard arity(statement, tlsToken == nil ? 1 : 2, usage: usage) else { return }
            let argument = statement.arguments[0]
            guard var address = value(ListenAddress.parse(argument.text), argument) else { return }
            if address.port != 0, let twin = listen.first(where: { $0.address.sameSocket(as: address) }) {
                sink.error(
                    "listen \(address) is already given on line \(twin.location.line); remove one",
                    at: argument.location)
                return
            }
            if let tlsToken {
                address.tls = true
                tlsListens.append(tlsToken.location)
            }
            listen.append((address, argument.location))
        case "admin":
            guard refuseBlock(statement), onceAtTop(statement),
                arity(statement, 1, usage: "admin 127.0.0.1:9901")
            else { return }
            let argument = statement.arguments[0]
            guard let address = value(ListenAddress.parse(argument.text), argument) else { return }
            admin = (address, argument.location)
        case "self_origin":
            guard refuseBlock(statement), atLeastOne(statement, usage: "self_origin https://proxy.example.com")
            else { return }
            for argument in statement.arguments where !argument.poisoned {
                switch Origin.parseDetailed(argument.text) {
                case .success(let origin): selfOrigins.insert(origin.serialized)
                case .failure(let error):
                    sink.error(
                        "invalid origin \(quoted(argument.text)) in self_origin: \(error.message) (self_origin lists exact origins, e.g. https://proxy.example.com)",
                        at: argument.location)
                }
            }
        case "upstream":
            handleUpstream(statement)
        case "max_body_size":
            guard refuseBlock(statement), onceAtTop(statement), arity(statement, 1, usage: "max_body_size 10m")
            else { return }
            maxBodySize = value(Units.bytes(statement.arguments[0].text), statement.arguments[0])
        case "drain_timeout":
            guard refuseBlock(statement), onceAtTop(statement), arity(statement, 1, usage: "drain_timeout 10s")
            else { return }
            drainTimeout = value(Units.milliseconds(statement.arguments[0].text), statement.arguments[0])
        case "log_format":
            guard refuseBlock(statement), onceAtTop(statement), arity(statement, 1, usage: "log_format json")
            else { return }
            let token = statement.arguments[0]
            guard !token.poisoned else { return }
            guard let format = ProxyConfiguration.LogFormat(rawValue: token.text) else {
                sink.error("log_format takes text or json, not \(quoted(token.text))", at: token.location)
                return
            }
            logFormat = format
        case "cors":
            handleTopLevelCORS(statement)
        case "route":
            handleRoute(statement)
        case "tls":
            handleTLS(statement)
        case let name where DirectiveNames.tlsBlock.contains(name):
            refuse(statement, "\(name) belongs inside the top-level tls { … } block")
        case let name where DirectiveNames.cors.contains(name):
            refuse(statement, "\(name) belongs inside cors { … } (defaults for every route) or inside a route")
        case let name where DirectiveNames.upstreamBlock.contains(name):
            refuse(statement, "\(name) belongs inside an upstream NAME { … } block")
        case "preserve_host", "strip_prefix":
            refuse(statement, "\(statement.directive) belongs inside a route PATH { … } block")
        default:
            refuse(statement, unknown(statement, expected: DirectiveNames.topLevel))
        }
    }

    /// `once` for top-level directives (copies out: `topSeen` is part of `self`).
    private mutating func onceAtTop(_ statement: Statement) -> Bool {
        var seen = topSeen
        defer { topSeen = seen }
        return once(statement, in: &seen)
    }

    private mutating func handleTopLevelCORS(_ statement: Statement) {
        guard let open = statement.blockOpen else {
            if statement.arguments.first?.text == "off" {
                sink.error(
                    "cors off is only allowed inside a route; at the top level, leave out allow_origin so nothing is allowed",
                    at: statement.name.location)
            } else {
                sink.error(
                    "cors needs a block: cors { allow_origin https://app.example.com }", at: statement.name.location)
            }
            return
        }
        if let extra = statement.arguments.first {
            sink.error("cors { … } takes no arguments; remove \(quoted(extra.text))", at: extra.location)
        }
        if let first = defaultCORSLocation {
            sink.error(
                "cors { … } is already given on line \(first.line); merge the two blocks", at: statement.name.location)
            currentCORSIsDefault = false
        } else {
            defaultCORSLocation = statement.name.location
            currentCORSIsDefault = true
        }
        _ = open
        currentCORS = CORSLayer()
        openFrame(.cors, statement: statement)
    }

    mutating func handleCORSBlock(_ statement: Statement) {
        let name = statement.directive
        if DirectiveNames.cors.contains(name) {
            // Move the layer out and back (swap) so its arrays stay uniquely referenced:
            // a copy here made every directive line copy every list so far (quadratic).
            var layer = CORSLayer()
            swap(&layer, &currentCORS)
            handleCORSDirective(statement, layer: &layer)
            swap(&layer, &currentCORS)
        } else if name == "cors" {
            refuse(statement, "cors { … } blocks do not nest; write the directives directly")
        } else if DirectiveNames.topLevel.contains(name) {
            refuse(statement, "\(name) is not allowed inside cors { … }; move it to the top level")
        } else if DirectiveNames.all.contains(name) {
            refuse(
                statement,
                "\(name) is not allowed inside cors { … }, which holds only CORS directives (\(DirectiveNames.cors.joined(separator: ", ")))"
            )
        } else {
            refuse(statement, unknown(statement, expected: DirectiveNames.cors))
        }
    }

    // MARK: - upstream

    private mutating func handleUpstream(_ statement: Statement) {
        let usage = "upstream NAME http://HOST:PORT, or upstream NAME { url http://HOST:PORT }"
        guard let nameToken = statement.arguments.first else {
            refuse(statement, "upstream needs a name and a URL; write \(usage)")
            return
        }
        var registered = false
        var nameOK = true
        if !nameToken.poisoned, !isUpstreamName(nameToken.text) {
            sink.error(
                "\(quoted(nameToken.text)) is not an upstream name; use letters, digits, '_', '-' or '.'",
                at: nameToken.location)
            nameOK = false
            // Still known, so routes naming it are not also "undefined".
            if declaredUpstreams[nameToken.text] == nil { declaredUpstreams[nameToken.text] = nameToken.location }
        } else if let first = declaredUpstreams[nameToken.text] {
            sink.error(
                "upstream \(nameToken.text) is already defined on line \(first.line); rename one",
                at: nameToken.location)
        } else {
            declaredUpstreams[nameToken.text] = nameToken.location
            registered = nameOK
        }
        var builder = UpstreamBuilder(
            name: nameToken.text, keyword: statement.name.location, registered: registered)

        if let open = statement.blockOpen {
            if statement.arguments.count > 1 {
                sink.error(
                    "give the upstream URL either after the name or inside the block as url, not both; remove \(quoted(statement.arguments[1].text))",
                    at: statement.arguments[1].location)
                builder.urlFailed = true
            }
            _ = open
            currentUpstream = builder
            openFrame(.upstream, statement: statement)
            return
        }
        guard statement.arguments.count >= 2 else {
            sink.error("upstream \(nameToken.text) needs a URL; write \(usage)", at: statement.name.location)
            return
        }
        if statement.arguments.count > 2 {
            sink.error(
                "upstream takes a name and one URL; remove \(quoted(statement.arguments[2].text))",
                at: statement.arguments[2].location)
            return
        }
        let urlToken = statement.arguments[1]
        builder.config = value(UpstreamConfig.parse(name: builder.name, url: urlToken.text), urlToken)
        builder.urlFailed = builder.config == nil
        finishUpstream(builder)
    }

    mutating func handleUpstreamBlock(_ statement: Statement) {
        guard var builder = currentUpstream else { return }
        defer { currentUpstream = builder }
        switch statement.directive {
        case "url":
            guard refuseBlock(statement), once(statement, in: &builder.seen),
                arity(statement, 1, usage: "url http://127.0.0.1:3000")
            else {
                builder.urlFailed = true
                return
            }
            let token = statement.arguments[0]
            builder.config = value(UpstreamConfig.parse(name: builder.name, url: token.text), token)
            builder.urlFailed = builder.config == nil
        case "connect_timeout", "timeout":
            guard refuseBlock(statement), once(statement, in: &builder.seen),
                arity(statement, 1, usage: "\(statement.directive) 5s")
            else { return }
            let token = statement.arguments[0]
            guard let milliseconds = value(Units.milliseconds(token.text), token) else { return }
            guard milliseconds > 0 else {
                sink.error("\(statement.directive) must be more than 0; write e.g. 5s", at: token.location)
                return
            }
            if statement.directive == "timeout" {
                builder.timeout = milliseconds
            } else {
                builder.connectTimeout = milliseconds
            }
        case let name where DirectiveNames.upstreamTLS.contains(name):
            handleUpstreamTLSDirective(statement, &builder)
        case let name where DirectiveNames.all.contains(name):
            refuse(
                statement,
                "\(name) is not allowed inside upstream { … }, which holds url, connect_timeout, timeout, ca_file, tls_verify, client_certificate and client_key"
            )
        default:
            refuse(statement, unknown(statement, expected: DirectiveNames.upstreamBlock))
        }
    }

    mutating func finishUpstream(_ builder: UpstreamBuilder) {
        guard var config = builder.config else {
            if !builder.urlFailed {
                sink.error(
                    "upstream \(builder.name) has no url; add url http://HOST:PORT inside its block",
                    at: builder.keyword)
            }
            return
        }
        if let connect = builder.connectTimeout { config.connectTimeoutMilliseconds = connect }
        if let timeout = builder.timeout { config.timeoutMilliseconds = timeout }
        finishUpstreamTLS(builder, &config)
        if builder.registered { upstreams[builder.name] = config }
    }
}

private func isUpstreamName(_ text: String) -> Bool {
    !text.isEmpty
        && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") }
}
