import ArgumentParser
import CORSPolicy
import ProxyConfig
import ProxyServer

/// `cors-proxy explain`: what the proxy would do with one request, and why.
struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Say which route matches a request, whether it is allowed and why, and the headers added.",
        discussion: "Exit status: 0 allowed, 1 denied, 2 invalid conf.")

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

    @Argument(help: "The request path, with an optional query.")
    var path: String

    func run() throws {
        let result = options.load()
        printDiagnostics(result.diagnostics)
        guard let configuration = result.configuration, result.errors.isEmpty else {
            throw ExitCode(2)
        }
        let serving = ServingConfig(configuration)
        let pathOnly = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let facts = RequestFacts(
            method: preflight ? "OPTIONS" : method, path: pathOnly, origins: origin.map { [$0] } ?? [],
            requestMethod: preflight ? method : nil, requestHeaders: headers.isEmpty ? [] : [headers.joined(separator: ", ")],
            privateNetwork: privateNetwork, host: host, scheme: .http)
        let route = serving.route(for: pathOnly)
        let decision = serving.decide(facts, route: route)
        let report = ExplainReport(routeLabel: route?.label, upstream: route?.route.upstream.urlPrefix, decision: decision)
        print(report.text, terminator: "")
        if !report.allowed { throw ExitCode(1) }
    }
}

/// The words `explain` prints for a decision.
struct ExplainReport {
    var routeLabel: String?
    var upstream: String?
    var decision: Decision

    var allowed: Bool {
        switch decision {
        case .passThrough, .preflight: return true
        case .deny: return false
        case .forward(_, _, _, let outcome):
            if case .allowed = outcome { return true }
            if case .sameOrigin = outcome { return true }
            if case .noOrigin = outcome { return true }
            return false
        }
    }

    var text: String {
        var lines: [String] = []
        lines.append("route: \(routeLabel ?? "none (no route matches this path)")" + (upstream.map { " -> \($0)" } ?? ""))
        var headers: [HeaderField] = []
        switch decision {
        case .passThrough:
            lines.append("decision: allowed: cors off, passed through untouched (no CORS headers added or removed)")
        case .preflight(let status, let h):
            lines.append("decision: allowed: preflight answered by the proxy with \(status)")
            headers = h
        case .deny(let status, let h, let denial):
            if let denial {
                lines.append("decision: denied: \(status)\(status == 403 ? ", nothing forwarded" : "")")
                lines.append("reason: \(denial.reason.rawValue): \(denial.detail)")
            } else {
                lines.append("decision: denied: \(status), no route matches this path")
            }
            headers = h
        case .forward(let add, _, let varyOrigin, let outcome):
            switch outcome {
            case .allowed: lines.append("decision: allowed: forwarded upstream, CORS headers added")
            case .sameOrigin: lines.append("decision: allowed: same-origin, forwarded like a request without Origin")
            case .noOrigin: lines.append("decision: allowed: no Origin (not a CORS request), forwarded")
            case .reported(let d):
                lines.append("decision: denied: enforce report, forwarded anyway without CORS headers; a warning is logged")
                lines.append("reason: \(d.reason.rawValue): \(d.detail)")
            case .unenforced(let d):
                lines.append("decision: denied: enforce off, forwarded anyway without CORS headers")
                lines.append("reason: \(d.reason.rawValue): \(d.detail)")
            case .denied(let d):
                lines.append("decision: denied")
                lines.append("reason: \(d.reason.rawValue): \(d.detail)")
            case .passthrough, .noRoute:
                lines.append("decision: \(outcome.label)")
            }
            headers = add
            if varyOrigin { headers.append(HeaderField("Vary", "Origin")) }
        }
        // The headers come last, after a blank line, one `Name: value` a line.
        lines.append("")
        for h in headers { lines.append("\(h.name): \(h.value)") }
        return lines.joined(separator: "\n") + "\n"
    }
}
