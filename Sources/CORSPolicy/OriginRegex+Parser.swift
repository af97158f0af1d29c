/// An `allow_origin ~REGEX` parsed: groups are gone (nothing is captured), escapes,
/// classes and `(?i)` are resolved to bytes and byte sets.
indirect enum RegexNode {
    /// Matches the empty string: an empty group or branch.
    case empty
    case byte(UInt8)
    /// One byte from the set.
    case set(ByteSet)
    /// `^`: holds only at the start of the origin.
    case start
    /// `$`: holds only at the end of the origin.
    case end
    case concatenation([RegexNode])
    case alternation([RegexNode])
    /// `max` nil: no upper bound.
    case repetition(RegexNode, min: Int, max: Int?)
}

/// Why a pattern is refused, in words a user can act on; the message names the byte
/// offset in the pattern (0 is the first character after `~`).
struct RegexSyntaxError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// Parses the supported syntax (docs/CONFIG.md §8, "Regexes") by recursive descent.
/// Recursion follows group nesting only, which `OriginRegex.shapeProblem` has bounded
/// before the parser runs (and `depth` bounds again, so the parser is safe on its own).
struct RegexParser {
    private let bytes: [UInt8]
    private var index = 0
    private var caseInsensitive = false
    private var depth = 0

    init(_ pattern: String) {
        bytes = Array(pattern.utf8)
    }

    mutating func parse() throws(RegexSyntaxError) -> RegexNode {
        // Offsets in messages count bytes; with non-ASCII refused first, they count characters too.
        if let offset = bytes.firstIndex(where: { $0 >= 0x80 }) {
            let character = String(decoding: bytes[offset...], as: UTF8.self).first.map { String($0) } ?? ""
            throw RegexSyntaxError(
                "'\(character)' at offset \(offset) is not ASCII; origins are ASCII, so write an internationalised host in punycode (xn--…)"
            )
        }
        if bytes.starts(with: "(?i)".utf8) {
            caseInsensitive = true
            index = 4
        }
        let node = try parseAlternation()
        // Only a `)` ends the top-level alternation early.
        if index < bytes.count {
            throw RegexSyntaxError(
                "unmatched ')' at offset \(index); remove it or write '\\)' for a literal ')'")
        }
        return node
    }

    // MARK: - Structure

    private mutating func parseAlternation() throws(RegexSyntaxError) -> RegexNode {
        var branches = [try parseConcatenation()]
        while index < bytes.count, bytes[index] == UInt8(ascii: "|") {
            index += 1
            branches.append(try parseConcatenation())
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    private mutating func parseConcatenation() throws(RegexSyntaxError) -> RegexNode {
        var items: [RegexNode] = []
        while index < bytes.count, bytes[index] != UInt8(ascii: "|"), bytes[index] != UInt8(ascii: ")") {
            // `^*` is refused, `(^)*` is not: what counts is how the atom is written.
            let isAnchor = bytes[index] == UInt8(ascii: "^") || bytes[index] == UInt8(ascii: "$")
            let atom = try parseAtom()
            let item = try parseQuantifier(of: atom, isAnchor: isAnchor)
            // Dropping empty groups keeps `.empty` the only node that compiles to nothing.
            if case .empty = item { continue }
            items.append(item)
        }
        switch items.count {
        case 0: return .empty
        case 1: return items[0]
        default: return .concatenation(items)
        }
    }

    private mutating func parseAtom() throws(RegexSyntaxError) -> RegexNode {
        let byte = bytes[index]
        switch byte {
        case UInt8(ascii: "("):
            return try parseGroup()
        case UInt8(ascii: "["):
            return try parseClass()
        case UInt8(ascii: "\\"):
            switch try parseEscape(inClass: false) {
            case .byte(let escaped): return literal(escaped)
            case .set(let set): return .set(caseInsensitive ? set.caseFolded : set)
            }
        case UInt8(ascii: "."):
            index += 1
            return .set(.anyButNewline)
        case UInt8(ascii: "^"):
            index += 1
            return .start
        case UInt8(ascii: "$"):
            index += 1
            return .end
        case UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "?"):
            throw nothingToRepeat(length: 1)
        case UInt8(ascii: "{"):
            if let quantifier = quantifier(at: index) { throw nothingToRepeat(length: quantifier.length) }
            throw RegexSyntaxError(
                "'{' at offset \(index) does not start a repeat count ({n}, {n,} or {n,m}); write '\\{' for a literal '{'"
            )
        default:
            index += 1
            return literal(byte)
        }
    }

    private func literal(_ byte: UInt8) -> RegexNode {
        guard caseInsensitive, isAlpha(byte) else { return .byte(byte) }
        return .set(ByteSet([byte | 0x20, byte & ~0x20]))
    }

    private func nothingToRepeat(length: Int) -> RegexSyntaxError {
        let written = text(index, length)
        let literalHint = length == 1 ? "; write '\\\(written)' for a literal '\(written)'" : ""
        return RegexSyntaxError("'\(written)' at offset \(index) has nothing before it to repeat\(literalHint)")
    }

    // MARK: - Quantifiers

    /// `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}` or `{,m}` at `offset`, or nil when there is none
    /// (a `{` that is not a well-formed count is not a quantifier). Counts saturate at a
    /// billion: any count that large is refused later for the size of the program.
    private func quantifier(at offset: Int) -> (min: Int, max: Int?, length: Int)? {
        guard offset < bytes.count else { return nil }
        switch bytes[offset] {
        case UInt8(ascii: "*"): return (0, nil, 1)
        case UInt8(ascii: "+"): return (1, nil, 1)
        case UInt8(ascii: "?"): return (0, 1, 1)
        case UInt8(ascii: "{"): break
        default: return nil
        }
        var cursor = offset + 1
        func number() -> Int? {
            var value: Int? = nil
            while cursor < bytes.count, isDigit(bytes[cursor]) {
                value = min((value ?? 0) * 10 + Int(bytes[cursor] - UInt8(ascii: "0")), 1_000_000_000)
                cursor += 1
            }
            return value
        }
        let low = number()
        var high = low
        var hasComma = false
        if cursor < bytes.count, bytes[cursor] == UInt8(ascii: ",") {
            hasComma = true
            cursor += 1
            high = number()
        }
        guard cursor < bytes.count, bytes[cursor] == UInt8(ascii: "}"), low != nil || high != nil else { return nil }
        return (low ?? 0, hasComma ? high : low, cursor + 1 - offset)
    }

    private mutating func parseQuantifier(of atom: RegexNode, isAnchor: Bool) throws(RegexSyntaxError) -> RegexNode {
        guard let (low, high, length) = quantifier(at: index) else { return atom }
        let start = index
        let written = text(start, length)
        if isAnchor {
            throw RegexSyntaxError(
                "'\(written)' at offset \(start) follows an anchor ('^' or '$'), which cannot be repeated")
        }
        if let high, low > high {
            throw RegexSyntaxError(
                "the repeat count '\(written)' at offset \(start) has its minimum above its maximum; write '{\(high),\(low)}'"
            )
        }
        index += length
        if index < bytes.count, bytes[index] == UInt8(ascii: "?") {
            // Lazy: it changes which match a search prefers, never whether the whole origin matches.
            index += 1
        } else if index < bytes.count, bytes[index] == UInt8(ascii: "+") {
            throw RegexSyntaxError(
                "the possessive quantifier '\(written)+' at offset \(start) is not supported; write '\(written)'")
        }
        if let next = quantifier(at: index) {
            throw RegexSyntaxError(
                "'\(text(index, next.length))' at offset \(index) follows another quantifier; to repeat a repeated part, group it first, e.g. (?:a+)*"
            )
        }
        // `(){1000000000}` is the empty string; expanding it would loop a billion times for nothing.
        if case .empty = atom { return .empty }
        return .repetition(atom, min: low, max: high)
    }

    // MARK: - Groups

    private mutating func parseGroup() throws(RegexSyntaxError) -> RegexNode {
        let open = index
        index += 1
        if index < bytes.count, bytes[index] == UInt8(ascii: "?") {
            try parseGroupKind(open: open)
        }
        depth += 1
        if depth > OriginRegex.maxNesting { throw RegexSyntaxError(OriginRegex.nestingMessage) }
        let inner = try parseAlternation()
        depth -= 1
        guard index < bytes.count, bytes[index] == UInt8(ascii: ")") else {
            throw RegexSyntaxError(
                "unclosed '(' at offset \(open); close it with ')' or write '\\(' for a literal '('")
        }
        index += 1
        return inner
    }

    /// After `(?`: accepts `(?:` and a named group `(?<name>` / `(?P<name>` (matched as a
    /// plain group), and refuses everything that needs backtracking or that we do not do.
    private mutating func parseGroupKind(open: Int) throws(RegexSyntaxError) {
        let kind = index + 1 < bytes.count ? bytes[index + 1] : 0
        let after = index + 2 < bytes.count ? bytes[index + 2] : 0
        let noLookaround =
            "is not supported: this engine matches in linear time and has no lookaround; rewrite the pattern without it"
        switch kind {
        case UInt8(ascii: ":"):
            index += 2
        case UInt8(ascii: "="):
            throw RegexSyntaxError("the lookahead '(?=' at offset \(open) \(noLookaround)")
        case UInt8(ascii: "!"):
            throw RegexSyntaxError("the negative lookahead '(?!' at offset \(open) \(noLookaround)")
        case UInt8(ascii: "<") where after == UInt8(ascii: "="):
            throw RegexSyntaxError("the lookbehind '(?<=' at offset \(open) \(noLookaround)")
        case UInt8(ascii: "<") where after == UInt8(ascii: "!"):
            throw RegexSyntaxError("the negative lookbehind '(?<!' at offset \(open) \(noLookaround)")
        case UInt8(ascii: ">"):
            throw RegexSyntaxError(
                "the atomic group '(?>' at offset \(open) is not supported; write a plain group '(?:'")
        case UInt8(ascii: "<"):
            index += 2
            try skipGroupName(open: open)
        case UInt8(ascii: "P") where after == UInt8(ascii: "<"):
            index += 3
            try skipGroupName(open: open)
        case UInt8(ascii: "P") where after == UInt8(ascii: "="):
            throw RegexSyntaxError(
                "the back-reference '(?P=' at offset \(open) is not supported: back-references cannot be matched in linear time"
            )
        case _ where isAlpha(kind) || kind == UInt8(ascii: "-") || kind == UInt8(ascii: "^"):
            if kind == UInt8(ascii: "i"), after == UInt8(ascii: ")") {
                throw RegexSyntaxError(
                    "'(?i)' at offset \(open) is accepted only at the very start of the pattern, where it makes the whole pattern case-insensitive"
                )
            }
            throw RegexSyntaxError(
                "the inline option '\(text(open, 3))' at offset \(open) is not supported; only a leading (?i) is")
        default:
            throw RegexSyntaxError(
                "'\(text(open, 3))' at offset \(open) is not a supported group; write (…), (?:…) or (?<name>…)")
        }
    }

    /// A group name, `[A-Za-z_][A-Za-z0-9_]*`, and the `>` after it.
    private mutating func skipGroupName(open: Int) throws(RegexSyntaxError) {
        let nameStart = index
        while index < bytes.count,
            bytes[index] == UInt8(ascii: "_") || isAlpha(bytes[index])
                || (index > nameStart && isDigit(bytes[index]))
        {
            index += 1
        }
        guard index > nameStart, index < bytes.count, bytes[index] == UInt8(ascii: ">") else {
            throw RegexSyntaxError(
                "the named group at offset \(open) needs a name of letters, digits and '_' closed by '>', e.g. (?<pr>[0-9]+)"
            )
        }
        index += 1
    }

    // MARK: - Escapes and classes

    private enum Member {
        case byte(UInt8)
        case set(ByteSet)
    }

    /// `\` and what follows, at `index`.
    private mutating func parseEscape(inClass: Bool) throws(RegexSyntaxError) -> Member {
        let start = index
        guard index + 1 < bytes.count else {
            throw RegexSyntaxError(
                "the pattern ends in a lone '\\' at offset \(start); write '\\\\' for a literal backslash")
        }
        let escaped = bytes[index + 1]
        index += 2
        switch escaped {
        case UInt8(ascii: "d"): return .set(.digits)
        case UInt8(ascii: "D"): return .set(ByteSet.digits.inverted)
        case UInt8(ascii: "w"): return .set(.word)
        case UInt8(ascii: "W"): return .set(ByteSet.word.inverted)
        case UInt8(ascii: "s"): return .set(.space)
        case UInt8(ascii: "S"): return .set(ByteSet.space.inverted)
        case UInt8(ascii: "1")...UInt8(ascii: "9"), UInt8(ascii: "k"), UInt8(ascii: "g"):
            if !inClass {
                throw RegexSyntaxError(
                    "the back-reference '\(text(start, 2))' at offset \(start) is not supported: back-references cannot be matched in linear time"
                )
            }
            throw unsupportedEscape(at: start)
        case _ where isAlpha(escaped) || isDigit(escaped):
            throw unsupportedEscape(at: start)
        default:
            // Any other ASCII character (punctuation above all) stands for itself.
            return .byte(escaped)
        }
    }

    private func unsupportedEscape(at start: Int) -> RegexSyntaxError {
        RegexSyntaxError(
            "the escape '\(text(start, 2))' at offset \(start) is not supported; the escapes are \\d \\D \\w \\W \\s \\S, and '\\' before punctuation for the punctuation itself (\\. \\- \\/ …)"
        )
    }

    /// `[…]` or `[^…]`, at `index`.
    private mutating func parseClass() throws(RegexSyntaxError) -> RegexNode {
        let open = index
        index += 1
        var negated = false
        if index < bytes.count, bytes[index] == UInt8(ascii: "^") {
            negated = true
            index += 1
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            throw RegexSyntaxError(
                "the class at offset \(open) is empty; a class needs a member, and a literal ']' in a class is written '\\]'"
            )
        }
        var set = ByteSet()
        while true {
            guard index < bytes.count else {
                throw RegexSyntaxError(
                    "unclosed '[' at offset \(open); close the class with ']' or write '\\[' for a literal '['")
            }
            if bytes[index] == UInt8(ascii: "]") {
                index += 1
                break
            }
            let memberStart = index
            let low = try parseClassMember()
            // A `-` right before `]` is a literal, not a range.
            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "-"), bytes[index + 1] != UInt8(ascii: "]")
            else {
                switch low {
                case .byte(let byte): set.insert(byte)
                case .set(let members): set.formUnion(members)
                }
                continue
            }
            index += 1
            let high = try parseClassMember()
            let written = text(memberStart, index - memberStart)
            guard case .byte(let first) = low, case .byte(let last) = high else {
                throw RegexSyntaxError(
                    "the range '\(written)' at offset \(memberStart) has a class such as \\d at one end; write '\\-' for a literal '-'"
                )
            }
            guard first <= last else {
                throw RegexSyntaxError(
                    "the range '\(written)' at offset \(memberStart) runs backwards; write its lower end first")
            }
            set.insert(first...last)
        }
        if caseInsensitive { set = set.caseFolded }
        return .set(negated ? set.inverted : set)
    }

    private mutating func parseClassMember() throws(RegexSyntaxError) -> Member {
        let byte = bytes[index]
        if byte == UInt8(ascii: "\\") { return try parseEscape(inClass: true) }
        if byte == UInt8(ascii: "[") {
            throw RegexSyntaxError(
                "'[' inside the class at offset \(index) is not supported (no nested classes or [:alpha:]); write '\\[' for a literal '['"
            )
        }
        // Other dialects (Swift's, Java's) read these doubled as class set operations;
        // refusing them keeps a pattern from silently changing meaning.
        if byte == UInt8(ascii: "&") || byte == UInt8(ascii: "~") || byte == UInt8(ascii: "-"),
            index + 1 < bytes.count, bytes[index + 1] == byte
        {
            let pair = text(index, 2)
            throw RegexSyntaxError(
                "'\(pair)' inside a class at offset \(index) is a set operation in other regex dialects and is not supported; write '\\\(pair.prefix(1))' for a literal '\(pair.prefix(1))'"
            )
        }
        index += 1
        return .byte(byte)
    }

    // MARK: - Bytes

    private func text(_ start: Int, _ length: Int) -> String {
        String(decoding: bytes[start..<min(start + length, bytes.count)], as: UTF8.self)
    }
}
