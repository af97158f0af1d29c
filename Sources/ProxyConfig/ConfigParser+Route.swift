import CORSPolicy

extension ConfigParser {
    mutating func handleRoute(_ statement: Statement) {
        let usage = "route /api/ { upstream NAME } or route = /healthz { upstream NAME }"
        guard let open = statement.blockOpen else {
            sink.error("route needs a block; write \(usage)", at: statement.name.location)
            return
        }
        var kind = RouteKind.prefix
        var pathToken: Token?
        var valid = true
        let arguments = statement.arguments
        if arguments.first?.text == "=", !(arguments.first?.quoted ?? true) {
            kind = .exact
            if arguments.count >= 2 { pathToken = arguments[1] }
            if arguments.count > 2 {
                sink.error("route = takes one path; remove \(quoted(arguments[2].text))", at: arguments[2].location)
                valid = false
            }
        } else {
            pathToken = arguments.first
            if arguments.count > 1 {
                sink.error(
                    "route takes one path prefix; remove \(quoted(arguments[1].text)) (write \(usage))",
                    at: arguments[1].location)
                valid = false
            }
        }
        var path = ""
        if let pathToken {
            path = pathToken.text
            if pathToken.poisoned {
                valid = false
            } else if let problem = routePathProblem(path) {
                sink.error(problem, at: pathToken.location)
                valid = false
            }
        } else {
            sink.error("route needs a path; write \(usage)", at: statement.name.location)
            valid = false
        }
        if valid, let pathToken {
            let key = "\(kind.rawValue) \(path)"
            if let first = routeKeys[key] {
                let label = kind == .exact ? "= \(path)" : path
                sink.error(
                    "route \(label) is already defined on line \(first.line); merge the two blocks",
                    at: pathToken.location)
                valid = false
            } else {
                routeKeys[key] = statement.name.location
            }
        }
        _ = open
        currentRoute = RouteBuilder(keyword: statement.name.location, kind: kind, path: path, valid: valid)
        openFrame(.route, statement: statement)
    }

    mutating func handleRouteBlock(_ statement: Statement) {
        guard var builder = currentRoute else { return }
        // Move out, so the builder's lists stay uniquely referenced (no copy per line).
        currentRoute = nil
        defer { currentRoute = builder }
        let name = statement.directive
        switch name {
        case "upstream":
            guard refuseBlock(statement) else { return }
            if statement.arguments.count > 1 {
                sink.error(
                    "in a route, upstream takes only a name; define the URL at the top level with upstream NAME URL",
                    at: statement.arguments[1].location)
                // Still take the name, so the route is not also "without upstream".
                builder.upstream = (statement.arguments[0].text, statement.arguments[0].location)
                return
            }
            guard once(statement, in: &builder.seen), arity(statement, 1, usage: "upstream NAME") else { return }
            builder.upstream = (statement.arguments[0].text, statement.arguments[0].location)
        case "cors":
            if statement.blockOpen != nil {
                refuse(
                    statement,
                    "cors { … } is only allowed at the top level; write CORS directives directly in the route")
                return
            }
            guard once(statement, in: &builder.seen), arity(statement, 1, usage: "cors off") else { return }
            let token = statement.arguments[0]
            guard token.text == "off" else {
                if !token.poisoned {
                    sink.error(
                        "a route takes cors off (pass-through), not \(quoted(token.text)); CORS is on unless turned off",
                        at: token.location)
                }
                return
            }
            builder.corsOff = statement.name.location
        case "max_body_size":
            guard refuseBlock(statement), once(statement, in: &builder.seen),
                arity(statement, 1, usage: "max_body_size 10m")
            else { return }
            builder.maxBodySize = value(Units.bytes(statement.arguments[0].text), statement.arguments[0])
        case "preserve_host":
            guard refuseBlock(statement), once(statement, in: &builder.seen),
                arity(statement, 1, usage: "preserve_host on")
            else { return }
            builder.preserveHost = value(
                Units.onOff(statement.arguments[0].text, directive: name), statement.arguments[0])
        case "strip_prefix":
            guard refuseBlock(statement), once(statement, in: &builder.seen),
                arity(statement, 1, usage: "strip_prefix /api")
            else { return }
            let token = statement.arguments[0]
            if token.poisoned { return }
            guard token.text.hasPrefix("/"), !token.text.contains("?") else {
                sink.error(
                    "strip_prefix takes a path prefix starting with '/' and without '?', e.g. strip_prefix /api",
                    at: token.location)
                return
            }
            builder.stripPrefix = token.text
        case let name where DirectiveNames.cors.contains(name):
            handleCORSDirective(statement, layer: &builder.cors)
        case "listen", "admin", "self_origin", "drain_timeout", "log_format", "tls":
            refuse(statement, "\(name) is not allowed inside a route; move it to the top level")
        case let name where DirectiveNames.tlsBlock.contains(name):
            refuse(statement, "\(name) belongs inside the top-level tls { … } block")
        case "route":
            refuse(statement, "routes do not nest; close this route with '}' before the next one")
        case let name where DirectiveNames.upstreamBlock.contains(name):
            refuse(
                statement,
                "\(name) belongs inside a top-level upstream NAME { … } block; the route names it with upstream NAME")
        default:
            refuse(statement, unknown(statement, expected: DirectiveNames.route))
        }
    }

    mutating func finishRoute(_ builder: RouteBuilder) {
        if let off = builder.corsOff {
            for directive in builder.cors.directives {
                sink.warning(
                    "\(directive.name) has no effect in a route with cors off (line \(off.line)); remove one of them",
                    at: directive.location)
            }
        }
        finishCORSLayer(builder.cors)
        guard builder.valid else { return }
        if builder.upstream == nil {
            let label = builder.kind == .exact ? "= \(builder.path)" : builder.path
            sink.error("route \(label) has no upstream; add upstream NAME inside its block", at: builder.keyword)
        }
        routes.append(builder)
    }
}

/// nil when `path` can be a route path; else what to write instead.
func routePathProblem(_ path: String) -> String? {
    if path.hasPrefix("="), path.count > 1 {
        return "write an exact route with a space after '=': route = \(path.dropFirst())"
    }
    guard path.hasPrefix("/") else {
        return "a route path starts with '/', e.g. /api/ (not \(quoted(path)))"
    }
    if path.contains("?") || path.contains("#") {
        return "a route path has no query or fragment: matching ignores the query; remove what follows '?'"
    }
    if path.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }) {
        return "a route path contains no whitespace or control characters"
    }
    return nil
}
