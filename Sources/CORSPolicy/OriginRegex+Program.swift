/// One instruction of a Thompson NFA. `byte` and `set` consume one byte of the origin;
/// the others are epsilon moves, followed while a byte is being waited for.
enum RegexInstruction: Sendable {
    case byte(UInt8)
    case set(ByteSet)
    /// Continue at both targets.
    case split(Int, Int)
    case jump(Int)
    /// `^`: continue only at the start of the origin.
    case assertStart
    /// `$`: continue only at the end of the origin.
    case assertEnd
    /// The pattern is complete: a whole match when the origin is too.
    case match
}

/// A compiled `~REGEX`: instructions run by `wholeMatches` (OriginRegex+Matcher.swift).
/// Counted repetition is expanded, so the program's size is checked before it is built.
struct RegexProgram: Sendable {
    let instructions: [RegexInstruction]
    /// How many instructions consume a byte or match: the most threads alive at one position.
    let threadCapacity: Int

    /// Compiles `node`, or refuses it when the program would exceed `limit` instructions.
    static func compile(_ node: RegexNode, limit: Int) throws(RegexSyntaxError) -> RegexProgram {
        let size = Self.size(of: node, limit: limit) + 1
        guard size <= limit else {
            throw RegexSyntaxError(
                "the regular expression is too large: it would compile to more than \(limit) matcher instructions (counted repeats expand, and nested ones multiply: (a{1000}){1000} is a million); use smaller counts, or + and *"
            )
        }
        var builder = Builder()
        builder.instructions.reserveCapacity(size)
        builder.emit(node)
        builder.instructions.append(.match)
        let consuming = builder.instructions.count(where: { instruction in
            switch instruction {
            case .byte, .set, .match: return true
            case .split, .jump, .assertStart, .assertEnd: return false
            }
        })
        return RegexProgram(instructions: builder.instructions, threadCapacity: consuming)
    }

    /// How many instructions `emit` appends for `node`, saturating just above `limit`, so
    /// that `(a{1000}){1000}` is measured, not expanded. Only `.empty` has size 0 (the parser
    /// folds empty groups away), so a repeat count also bounds the work of expanding it.
    static func size(of node: RegexNode, limit: Int) -> Int {
        let ceiling = limit + 1
        func capped(_ value: Int) -> Int { min(value, ceiling) }
        func times(_ count: Int, _ size: Int) -> Int {
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            return overflow ? ceiling : capped(product)
        }
        switch node {
        case .empty:
            return 0
        case .byte, .set, .start, .end:
            return 1
        case .concatenation(let items):
            return items.reduce(0) { capped($0 + size(of: $1, limit: limit)) }
        case .alternation(let branches):
            // A split before and a jump after every branch but the last.
            let inner = branches.reduce(0) { capped($0 + size(of: $1, limit: limit)) }
            return capped(inner + 2 * (branches.count - 1))
        case .repetition(let item, let low, let high):
            let one = size(of: item, limit: limit)
            guard let high else {
                // `e*`: split, e, jump back. `e{n,}`: n copies of e, the last followed by a split back.
                return low == 0 ? capped(one + 2) : capped(times(low, one) + 1)
            }
            // `e{n,m}`: n copies of e, then m-n optional copies, each behind a split.
            return capped(times(low, one) + times(high - low, capped(one + 1)))
        }
    }

    private struct Builder {
        var instructions: [RegexInstruction] = []

        @discardableResult
        mutating func append(_ instruction: RegexInstruction) -> Int {
            instructions.append(instruction)
            return instructions.count - 1
        }

        mutating func emit(_ node: RegexNode) {
            switch node {
            case .empty:
                break
            case .byte(let byte):
                append(.byte(byte))
            case .set(let set):
                append(.set(set))
            case .start:
                append(.assertStart)
            case .end:
                append(.assertEnd)
            case .concatenation(let items):
                for item in items { emit(item) }
            case .alternation(let branches):
                var jumpsToEnd: [Int] = []
                for branch in branches.dropLast() {
                    let split = append(.split(0, 0))
                    emit(branch)
                    jumpsToEnd.append(append(.jump(0)))
                    instructions[split] = .split(split + 1, instructions.count)
                }
                emit(branches[branches.count - 1])
                for jump in jumpsToEnd { instructions[jump] = .jump(instructions.count) }
            case .repetition(let item, let low, nil) where low == 0:
                let split = append(.split(0, 0))
                emit(item)
                append(.jump(split))
                instructions[split] = .split(split + 1, instructions.count)
            case .repetition(let item, let low, nil):
                for _ in 1..<low { emit(item) }
                let loop = instructions.count
                emit(item)
                append(.split(loop, instructions.count + 1))
            case .repetition(let item, let low, let high?):
                for _ in 0..<low { emit(item) }
                // Nested optionals, (e(e(e)?)?)?: skipping one skips the rest.
                var skips: [Int] = []
                for _ in low..<high {
                    skips.append(append(.split(0, 0)))
                    emit(item)
                }
                for skip in skips { instructions[skip] = .split(skip + 1, instructions.count) }
            }
        }
    }
}
