/// A compiled `~REGEX` from `allow_origin`. Compiled once at load; matched
/// against the whole normalised origin (an implicit `^…$`).
package struct OriginRegex: Sendable {
    package let pattern: String
    // Regex is not Sendable when its output is AnyRegexOutput, but a compiled
    // Regex is immutable and matching does not mutate it.
    nonisolated(unsafe) private let regex: Regex<AnyRegexOutput>

    package init?(_ pattern: String) {
        guard let regex = try? Regex(pattern) else { return nil }
        self.pattern = pattern
        self.regex = regex
        // Regex lowers its program on first use; do it at load, not on a request.
        _ = try? regex.wholeMatch(in: "")
    }

    package func wholeMatches(_ origin: String) -> Bool {
        (try? regex.wholeMatch(in: origin)) != nil
    }

    /// nil when `pattern` compiles; else the compiler's complaint.
    package static func compileProblem(_ pattern: String) -> String? {
        do {
            _ = try Regex(pattern)
            return nil
        } catch {
            return "\(error)"
        }
    }
}
