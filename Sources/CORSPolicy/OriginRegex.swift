/// A compiled `~REGEX` from `allow_origin`. Compiled once at load; matched
/// against the whole normalised origin (an implicit `^…$`).
package struct OriginRegex: Sendable {
    package let pattern: String
    // Regex is not Sendable when its output is AnyRegexOutput, but a compiled
    // Regex is immutable and matching does not mutate it.
    nonisolated(unsafe) private let regex: Regex<AnyRegexOutput>

    /// Limits checked before the regex parser sees a pattern: Swift's parser recurses
    /// per nesting level, and a few thousand levels overflow the stack.
    package static let maxLength = 1024
    package static let maxNesting = 32

    package init?(_ pattern: String) {
        guard Self.shapeProblem(pattern) == nil, let regex = try? Regex(pattern) else { return nil }
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
        if let problem = shapeProblem(pattern) { return problem }
        do {
            _ = try Regex(pattern)
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// Too long, or groups and classes nested too deeply (escaped characters do not count).
    static func shapeProblem(_ pattern: String) -> String? {
        if pattern.utf8.count > maxLength {
            return "the regular expression is longer than \(maxLength) bytes; an origin pattern never needs that much"
        }
        var depth = 0
        var escaped = false
        for byte in pattern.utf8 {
            if escaped {
                escaped = false
                continue
            }
            switch byte {
            case UInt8(ascii: "\\"): escaped = true
            case UInt8(ascii: "("), UInt8(ascii: "["):
                depth += 1
                if depth > maxNesting {
                    return "the regular expression nests groups or classes more than \(maxNesting) deep; simplify it"
                }
            case UInt8(ascii: ")"), UInt8(ascii: "]"):
                depth = max(0, depth - 1)
            default:
                break
            }
        }
        return nil
    }
}
