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
        var lines = [
            "route: \(routeLabel ?? "none (no route matches this path)")" + (upstream.map { " -> \($0)" } ?? "")
        ]
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
