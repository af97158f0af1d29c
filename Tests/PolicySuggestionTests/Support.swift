import CORSPolicy
import PolicySuggestion
import ProxyConfig
import ProxyLog

/// 2026-12-06T01:23:07Z.
let baseSecond: Int64 = 1_796_520_187

/// A denial line as the proxy writes it (rendered by ProxyLog, so the test reads what the
/// proxy really writes).
func denialLine(
    route: String = "/api/", kind: String = "actual", method: String? = nil, origin: String?,
    reason: DenialReason = .originNotAllowed, detail: String? = nil, requestMethod: String? = nil,
    requestHeaders: String? = nil, outcome: String = "reported", second: Int64 = 0, format: LogFormat = .text
) -> String {
    let record = AccessRecord(
        event: .denial, level: .warning, client: "192.0.2.1",
        method: method ?? (kind == "preflight" ? "OPTIONS" : "GET"),
        target: "/api/items", route: route, kind: kind, status: kind == "preflight" || outcome == "denied" ? 403 : 200,
        outcome: outcome, durationNanoseconds: 100_000, origin: origin, reason: reason.rawValue,
        detail: detail ?? "\(reason.rawValue) for route \(route)", requestMethod: requestMethod,
        requestHeaders: requestHeaders, bytesIn: 0, bytesOut: 10)
    let buffer = LineBuffer()
    var clock = TimestampFormatter()
    record.render(format, into: buffer, clock: &clock, seconds: baseSecond + second, nanoseconds: 0)
    return String(buffer.text.dropLast())
}

/// The time of `denialLine(second:)`.
func time(_ second: Int64) -> String {
    let buffer = LineBuffer()
    var clock = TimestampFormatter()
    clock.append(seconds: baseSecond + second, nanoseconds: 0, to: buffer)
    return buffer.text
}

func digest(_ lines: [String]) -> DenialDigest {
    var digest = DenialDigest()
    for line in lines { digest.add(line: line) }
    return digest
}

func conf(_ text: String) throws -> ProxyConfiguration {
    let result = ProxyConfig.load(text: text, path: "proxy.conf", environment: [:])
    guard let configuration = result.configuration else {
        throw ConfError(diagnostics: result.diagnostics.map(\.description))
    }
    return configuration
}

struct ConfError: Error, CustomStringConvertible {
    var diagnostics: [String]
    var description: String { diagnostics.joined(separator: "\n") }
}

extension Suggestion {
    func route(_ label: String) -> Route? { routes.first { $0.label == label } }
}

extension Suggestion.Route {
    func additions(_ name: String) -> [String] {
        directives.first { $0.name == name }?.additions.map(\.value) ?? []
    }
    func current(_ name: String) -> [String]? { directives.first { $0.name == name }?.current }
    func count(_ value: String) -> Int? {
        for directive in directives {
            if let item = directive.additions.first(where: { $0.value == value }) { return item.seen.count }
        }
        return heldBack.first { $0.value == value }?.seen.count
    }
    var held: [String] { heldBack.map(\.value) }
}
