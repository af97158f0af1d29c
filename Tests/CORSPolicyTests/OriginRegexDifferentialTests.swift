import Testing

@testable import CORSPolicy

/// A random pattern from the supported syntax, and a way to draw strings it probably
/// matches, so that the comparison sees matches as well as misses.
private struct GeneratedPattern {
    var text: String
    /// The pattern matches the empty string (or may: anchors count as empty).
    var canBeEmpty: Bool
    var sample: (inout SplitMix) -> String
}

/// Draws small patterns over the alphabet `a b A 1 - . space`, with every construct both
/// engines share: literals, escapes, `.`, classes, shorthands, groups, alternation,
/// anchors, greedy and lazy quantifiers, and a leading `(?i)`.
///
/// A part that can match the empty string is never repeated. Swift's engine gets those
/// wrong (`(^|a){2,}` does not match `a` there; Python's re, PCRE and ours say it does) or
/// loops for minutes (`(a?|b)+?c` shapes); OriginRegexTests covers them against fixed answers.
private struct PatternGenerator {
    var rng: SplitMix

    static let alphabet: [Character] = ["a", "b", "A", "1", "-", ".", " "]

    mutating func pick<T>(_ choices: [T]) -> T { choices[Int.random(in: 0..<choices.count, using: &rng)] }
    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &rng) < percent }

    mutating func pattern() -> GeneratedPattern {
        let body = sequence(depth: 0)
        guard chance(15) else { return body }
        return GeneratedPattern(text: "(?i)" + body.text, canBeEmpty: body.canBeEmpty) { rng in
            String(body.sample(&rng).map { Bool.random(using: &rng) ? Character($0.uppercased()) : $0 })
        }
    }

    private mutating func sequence(depth: Int) -> GeneratedPattern {
        let items = (0..<Int.random(in: 1...3, using: &rng)).map { _ in quantified(depth: depth) }
        return GeneratedPattern(text: items.map(\.text).joined(), canBeEmpty: items.allSatisfy(\.canBeEmpty)) { rng in
            items.map { $0.sample(&rng) }.joined()
        }
    }

    private mutating func quantified(depth: Int) -> GeneratedPattern {
        if chance(6) { return GeneratedPattern(text: pick(["^", "$"]), canBeEmpty: true) { _ in "" } }
        let item = atom(depth: depth)
        guard !item.canBeEmpty, chance(40) else { return item }
        let (text, low, high): (String, Int, Int?) = {
            switch Int.random(in: 0..<7, using: &rng) {
            case 0: return ("*", 0, nil)
            case 1: return ("+", 1, nil)
            case 2: return ("?", 0, 1)
            case 3:
                let n = Int.random(in: 0...3, using: &rng)
                return ("{\(n)}", n, n)
            case 4:
                let n = Int.random(in: 0...2, using: &rng)
                return ("{\(n),}", n, nil)
            case 5:
                let n = Int.random(in: 0...2, using: &rng)
                let m = Int.random(in: n...3, using: &rng)
                return ("{\(n),\(m)}", n, m)
            default:
                let m = Int.random(in: 0...2, using: &rng)
                return ("{,\(m)}", 0, m)
            }
        }()
        let lazy = chance(20) ? "?" : ""
        return GeneratedPattern(text: item.text + text + lazy, canBeEmpty: low == 0) { rng in
            let count = Int.random(in: low...(high ?? low + 2), using: &rng)
            return (0..<count).map { _ in item.sample(&rng) }.joined()
        }
    }

    private mutating func atom(depth: Int) -> GeneratedPattern {
        if depth < 2, chance(25) {
            let first = sequence(depth: depth + 1)
            if chance(50) {
                let open = pick(["(", "(?:"])
                return GeneratedPattern(
                    text: open + first.text + ")", canBeEmpty: first.canBeEmpty, sample: first.sample)
            }
            let second =
                chance(20) ? GeneratedPattern(text: "", canBeEmpty: true) { _ in "" } : sequence(depth: depth + 1)
            let text = "(" + first.text + "|" + second.text + ")"
            return GeneratedPattern(text: text, canBeEmpty: first.canBeEmpty || second.canBeEmpty) { rng in
                Bool.random(using: &rng) ? first.sample(&rng) : second.sample(&rng)
            }
        }
        let (text, members): (String, [Character]) = pick([
            ("a", ["a"]), ("b", ["b"]), ("1", ["1"]), ("-", ["-"]),
            ("\\.", ["."]), ("\\-", ["-"]), (".", Self.alphabet),
            ("[ab]", ["a", "b"]), ("[a-c]", ["a", "b"]), ("[^a]", ["b", "1", "-", ".", " "]),
            ("[-a]", ["-", "a"]), ("[a-]", ["a", "-"]), ("[\\d.]", ["1", "."]), ("[\\w-]", ["a", "b", "1", "-"]),
            ("[^.-]", ["a", "b", "1", " "]), ("[\\s\\-]", [" ", "-"]), ("[A-Z]", ["A"]),
            ("\\d", ["1"]), ("\\D", ["a", "-"]), ("\\w", ["a", "b", "1"]), ("\\W", ["-", ".", " "]),
            ("\\s", [" "]), ("\\S", ["a", "."]),
        ])
        return GeneratedPattern(text: text, canBeEmpty: false) { rng in
            String(members[Int.random(in: 0..<members.count, using: &rng)])
        }
    }

    /// Samples, samples with one character inserted, removed or replaced, and random text.
    /// Samples are cut at 8 characters: Swift's engine backtracks, and nested quantifiers
    /// such as `(?:.+[a-]*)*` against 30 characters kept it busy for minutes.
    mutating func origins(for pattern: GeneratedPattern) -> [String] {
        var result: [String] = []
        for _ in 0..<3 { result.append(String(pattern.sample(&rng).prefix(8))) }
        for _ in 0..<3 {
            var chars = Array(pattern.sample(&rng).prefix(8))
            let position = Int.random(in: 0...chars.count, using: &rng)
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: chars.insert(pick(Self.alphabet), at: position)
            case 1 where !chars.isEmpty: chars.remove(at: min(position, chars.count - 1))
            default:
                if !chars.isEmpty { chars[min(position, chars.count - 1)] = pick(Self.alphabet) }
            }
            result.append(String(chars))
        }
        for _ in 0..<2 {
            result.append(String((0..<Int.random(in: 0...6, using: &rng)).map { _ in pick(Self.alphabet) }))
        }
        return result
    }
}

/// Our engine agrees with Swift's `Regex.wholeMatch` on random small patterns and short origins.
@Test(arguments: [UInt64(7), 8, 9, 10])
func regexAgreesWithSwiftRegex(_ seed: UInt64) throws {
    var generator = PatternGenerator(rng: SplitMix(state: seed))
    var compared = 0
    var matched = 0
    for _ in 0..<200 {
        let pattern = generator.pattern()
        let ours = try #require(
            OriginRegex(pattern.text), "\(pattern.text): \(OriginRegex.compileProblem(pattern.text) ?? "")")
        let theirs = try Regex(pattern.text)
        for origin in generator.origins(for: pattern) {
            let expected = (try? theirs.wholeMatch(in: origin)) != nil
            #expect(ours.wholeMatches(origin) == expected, "\(pattern.text) vs \(origin.debugDescription)")
            compared += 1
            if expected { matched += 1 }
        }
    }
    // The samples are built to match: a generator that stopped producing matches would
    // compare little of the matcher.
    #expect(matched * 4 > compared, "only \(matched) of \(compared) matched")
}
