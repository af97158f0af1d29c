/// The `~REGEX` engine cors-proxy had before its own (Sources/CORSPolicy/OriginRegex.swift
/// up to commit cbd7501): Swift's `Regex`, which backtracks. Kept here only to be timed
/// against `OriginRegex`.
struct SwiftRegexOriginMatcher {
    // A compiled Regex is immutable; this benchmark matches from one thread anyway.
    nonisolated(unsafe) private let regex: Regex<AnyRegexOutput>

    init(_ pattern: String) throws {
        regex = try Regex(pattern)
        // Regex lowers its program on first use; do it before timing.
        _ = try? regex.wholeMatch(in: "")
    }

    func wholeMatches(_ origin: String) -> Bool {
        (try? regex.wholeMatch(in: origin)) != nil
    }
}
