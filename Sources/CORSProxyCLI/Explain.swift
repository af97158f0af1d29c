import ArgumentParser
import CORSPolicy
import CoreMetrics
import HeaderFields
import ProxyConfig
import ProxyServer

/// `cors-proxy explain`: what the proxy would do with one request, and why.
struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Say which route matches a request, whether it is allowed and why, and the headers added.",
        discussion: """
            With --websocket, explains a WebSocket handshake (a GET with Upgrade: websocket) instead: \
            only its Origin is checked, and it is tunnelled, refused (403), or answered 501 on a route \
            with websocket off.

            Exit status: 0 allowed (a handshake: tunnelled), 1 denied, 2 invalid conf.
            """)

    @OptionGroup var options: ConfigOptions

    @Option(help: "The request's Origin header.")
    var origin: String?

    @Option(help: "The request method; with --preflight, the method the preflight asks for.")
    var method = "GET"

    @Option(name: .customLong("header"), help: "A request header name the preflight asks for (repeatable).")
    var headers: [String] = []

    @Flag(help: "Explain the preflight (OPTIONS with Access-Control-Request-Method) instead of the actual request.")
    var preflight = false

    @Option(help: "The request's Host header, for same-origin detection.")
    var host: String?

    @Flag(help: "The preflight asks for Private Network Access.")
    var privateNetwork = false

    @Flag(help: "Explain a WebSocket handshake on PATH (its origin check) instead of an HTTP request.")
    var websocket = false

    @Argument(help: "The request path, with an optional query.")
    var path: String

    func validate() throws {
        guard websocket else { return }
        if preflight || method != "GET" || !headers.isEmpty || privateNetwork {
            throw ValidationError(
                "--websocket explains a handshake, a GET whose only CORS fact is its Origin: "
                    + "leave out --preflight, --method, --header and --private-network")
        }
    }

    func run() throws {
        let result = options.loadConfOnly()
        printDiagnostics(result.diagnostics)
        guard let configuration = result.configuration, result.errors.isEmpty else {
            throw ExitCode(2)
        }
        let serving = ServingConfig(configuration, metrics: ProxyMetrics(factory: NOOPMetricsHandler.instance))
        let pathOnly = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let facts = RequestFacts(
            method: preflight ? "OPTIONS" : method, path: pathOnly, origins: origin.map { [$0] } ?? [],
            requestMethod: preflight ? method : nil,
            requestHeaders: headers.isEmpty ? [] : [headers.joined(separator: ", ")],
            privateNetwork: privateNetwork, host: host, scheme: .http)
        let route = serving.route(for: pathOnly)
        if websocket {
            let report = WebSocketExplainReport(
                routeLabel: route?.label, upstream: route?.route.upstream.urlPrefix,
                decision: serving.decideWebSocket(facts, route: route), websocketOff: route?.refusesWebSocket == true)
            print(report.text, terminator: "")
            if !report.tunnelled { throw ExitCode(1) }
            return
        }
        let decision = serving.decide(facts, route: route)
        let report = ExplainReport(
            routeLabel: route?.label, upstream: route?.route.upstream.urlPrefix, decision: decision)
        print(report.text, terminator: "")
        if !report.allowed { throw ExitCode(1) }
    }
}

/// The words `explain` prints for a decision.
struct ExplainReport {
    var routeLabel: String?
    var upstream: String?
    var decision: Decision

    var allowed: Bool { decision.summary.isAllowed }

    /// What happens, in words, for the second line.
    private var what: String {
        switch decision {
        case .passThrough:
            return "allowed: cors off, passed through untouched (no CORS headers added or removed)"
        case .preflight(let status, _):
            return "allowed: preflight answered by the proxy with \(status)"
        case .deny(let status, _, let denial):
            return denial == nil
                ? "denied: \(status), no route matches this path" : "denied: \(status), nothing forwarded"
        case .forward(_, _, _, let outcome):
            switch outcome {
            case .allowed: return "allowed: forwarded upstream, CORS headers added"
            case .sameOrigin: return "allowed: same-origin, forwarded like a request without Origin"
            case .noOrigin: return "allowed: no Origin (not a CORS request), forwarded"
            case .reported: return "denied: enforce report, forwarded anyway without CORS headers; a warning is logged"
            case .unenforced: return "denied: enforce off, forwarded anyway without CORS headers"
            case .denied, .passthrough, .noRoute: return decision.summary.description
            }
        }
    }

    var text: String {
        var lines = [routeLine(routeLabel, upstream)]
        lines.append("decision: \(what)")
        if let denial = decision.denial {
            lines.append("reason: \(denial.reason.rawValue): \(denial.detail)")
        }
        // The headers come last, after a blank line, one `Name: value` a line.
        lines.append("")
        lines.append(contentsOf: decision.responseHeaderFields)
        return lines.joined(separator: "\n") + "\n"
    }
}

/// `explain`'s first line: the route and where it forwards.
func routeLine(_ label: String?, _ upstream: String?) -> String {
    "route: \(label ?? "none (no route matches this path)")" + (upstream.map { " -> \($0)" } ?? "")
}

/// The words `explain --websocket` prints for a handshake: tunnelled (exit 0), or refused with
/// the reason. A tunnel's `101` goes back as the upstream sent it, so no header follows the
/// blank line; a refusal lists the headers of the proxy's answer (403, 404, or 501 for
/// `websocket off`).
struct WebSocketExplainReport {
    var routeLabel: String?
    var upstream: String?
    /// The origin check's decision (`ServingConfig.decideWebSocket`).
    var decision: Decision
    /// The route has `websocket off`: a handshake that passes the origin check gets 501.
    var websocketOff: Bool

    /// Forwarded upstream as a tunnel, with nothing to report.
    var tunnelled: Bool {
        guard !websocketOff else { return false }
        switch decision {
        case .passThrough: return true
        case .forward(_, _, _, let outcome): return outcome.denial == nil
        case .preflight, .deny: return false
        }
    }

    private var what: String {
        switch decision {
        case .forward where websocketOff:
            return "denied: 501, nothing forwarded (websocket off)"
        case .passThrough:
            return "forwarded (tunnelled): cors off, no origin check; the 101 goes back untouched"
        case .deny(let status, _, let denial):
            return denial == nil
                ? "denied: \(status), no route matches this path" : "denied: \(status), nothing forwarded"
        case .forward(_, _, _, let outcome):
            switch outcome {
            case .allowed:
                return "forwarded (tunnelled): origin allowed; the 101 goes back as the upstream sent it"
            case .sameOrigin: return "forwarded (tunnelled): same-origin, like a handshake without Origin"
            case .noOrigin: return "forwarded (tunnelled): no Origin (not from a web page), no check to make"
            case .reported: return "denied: enforce report, tunnelled anyway; a warning is logged"
            case .unenforced: return "denied: enforce off, tunnelled anyway"
            case .denied, .passthrough, .noRoute: return decision.summary.description
            }
        case .preflight:
            return decision.summary.description
        }
    }

    /// The headers of the proxy's own answer; none for a tunnel.
    private var headers: [String] {
        if websocketOff, case .forward = decision { return decision.proxyMadeResponseHeaders.map(\.description) }
        if case .deny = decision { return decision.responseHeaderFields }
        return []
    }

    var text: String {
        var lines = [routeLine(routeLabel, upstream), "decision: \(what)"]
        if case .forward = decision, websocketOff {
            lines.append(
                "reason: websocket off: route \(routeLabel ?? "-") answers WebSocket handshakes with 501 (websocket off)"
            )
        } else if let denial = decision.denial {
            lines.append("reason: \(denial.reason.rawValue): \(denial.detail)")
        }
        lines.append("")
        lines.append(contentsOf: headers)
        return lines.joined(separator: "\n") + "\n"
    }
}
