/// A compiled `~REGEX` from `allow_origin`. Compiled once at load; matched against the
/// whole normalised origin (an implicit `^…$`).
///
/// The engine is our own (parser, Thompson NFA, Pike VM: the OriginRegex+… files), not
/// Swift's `Regex`, which backtracks: a hostile `Origin` against `^https://(a+)+\.x$`
/// took exponential time per request. Matching here is linear in the origin, whatever the
/// pattern. The syntax is documented in docs/CONFIG.md §8 ("Regexes").
package struct OriginRegex: Sendable {
    package let pattern: String
    private let program: RegexProgram

    /// Checked before the parser runs: the parser recurses per group level.
    package static let maxLength = 1024
    package static let maxNesting = 32
    /// Matching costs up to one step per instruction per byte of the origin, so the program
    /// is capped; counted repetition expands, which is how a short pattern grows past it.
    package static let maxProgramSize = 20_000

    package init?(_ pattern: String) {
        guard case .success(let program) = Self.compile(pattern) else { return nil }
        self.pattern = pattern
        self.program = program
    }

    package func wholeMatches(_ origin: String) -> Bool {
        origin.utf8.withContiguousStorageIfAvailable { program.wholeMatches($0) }
            ?? Array(origin.utf8).withUnsafeBufferPointer { program.wholeMatches($0) }
    }

    /// nil when `pattern` compiles; else what is wrong with it, and where.
    package static func compileProblem(_ pattern: String) -> String? {
        switch compile(pattern) {
        case .success: return nil
        case .failure(let error): return error.message
        }
    }

    static func compile(_ pattern: String) -> Result<RegexProgram, RegexSyntaxError> {
        if let problem = shapeProblem(pattern) { return .failure(RegexSyntaxError(problem)) }
        do throws(RegexSyntaxError) {
            var parser = RegexParser(pattern)
            let node = try parser.parse()
            return .success(try RegexProgram.compile(node, limit: maxProgramSize))
        } catch {
            return .failure(error)
        }
    }

    static let nestingMessage =
        "the regular expression nests groups or classes more than \(maxNesting) deep; simplify it"

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
                if depth > maxNesting { return nestingMessage }
            case UInt8(ascii: ")"), UInt8(ascii: "]"):
                depth = max(0, depth - 1)
            default:
                break
            }
        }
        return nil
    }
}
