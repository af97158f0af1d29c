import Foundation
import TestSupport

/// The metric and label names one PromQL expression reads, so a test can check them against a
/// real `/metrics` scrape. Not a PromQL parser: a scanner that knows just enough of the grammar
/// to tell a metric name from a function, an aggregation or a keyword.
///
/// - A metric is an identifier that is not followed by `(` (a function or an aggregation) and is
///   not a keyword; its `{label op "value", …}` matchers are kept with it. `{__name__="m"}` names `m`.
/// - `by (…)`, `without (…)`, `on (…)`, `ignoring (…)`, `group_left (…)` and `group_right (…)`
///   name grouping labels, which every metric of the expression must carry.
/// - Strings, numbers, durations, `[range]` and `[range:step]` brackets, `# comments` and Grafana
///   variables (`$route`, `${route}`, `$__rate_interval`) are skipped.
///
/// Anything it cannot read (an unclosed string, brace or bracket; a matcher without a label or an
/// operator) throws, so a mistake in the dashboard fails the test instead of hiding a name.
struct PromQLNames: Equatable {
    struct Matcher: Equatable {
        var label: String
        var op: String
        var value: String
    }

    struct Selector: Equatable {
        var metric: String
        var matchers: [Matcher]
    }

    var selectors: [Selector] = []
    var groupingLabels: Set<String> = []

    var metrics: Set<String> { Set(selectors.map(\.metric)) }

    static let groupingKeywords: Set<String> = ["by", "without", "on", "ignoring", "group_left", "group_right"]
    static let otherKeywords: Set<String> = ["and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"]
    /// Aggregation operators: followed by `(` or by `by`/`without`, never a metric.
    static let aggregations: Set<String> = [
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
        "quantile", "limitk", "limit_ratio",
    ]

    init(_ expression: String) throws {
        var scanner = Scanner(Array(expression.unicodeScalars), expression: expression)
        while let c = scanner.peek() {
            switch c {
            case " ", "\t", "\n", "\r":
                scanner.advance()
            case "#":
                while let c = scanner.peek(), c != "\n" { scanner.advance() }
            case "\"", "'", "`":
                _ = try scanner.string()
            case "[":
                try scanner.skipBrackets()
            case "$":
                try scanner.skipVariable()
            case "{":
                let matchers = try scanner.matchers()
                guard let name = matchers.first(where: { $0.label == "__name__" && $0.op == "=" }) else {
                    throw scanner.error("a selector without a metric name")
                }
                selectors.append(Selector(metric: name.value, matchers: matchers.filter { $0.label != "__name__" }))
            case _ where Scanner.isDigit(c) || (c == "." && scanner.peek(1).map(Scanner.isDigit) == true):
                // Numbers and durations: 0.99, 1e3, 5m, 0x1f.
                while let c = scanner.peek(), Scanner.isIdentifier(c) || c == "." { scanner.advance() }
            case _ where Scanner.isIdentifierStart(c):
                let word = scanner.identifier()
                let lower = word.lowercased()
                let next = scanner.peekSkippingSpace()
                if Self.groupingKeywords.contains(lower) {
                    if next == "(" { groupingLabels.formUnion(try scanner.labelList()) }
                } else if Self.otherKeywords.contains(lower) || next == "(" {
                    continue  // a keyword, or a function or aggregation call
                } else if Self.aggregations.contains(lower), let following = scanner.wordAfterSpace(),
                    Self.groupingKeywords.contains(following.lowercased())
                {
                    continue  // `sum by (…) (…)`
                } else {
                    let matchers = next == "{" ? try scanner.matchers() : []
                    selectors.append(Selector(metric: word, matchers: matchers))
                }
            case "(", ")", ",", "+", "-", "*", "/", "%", "^", "=", "!", "<", ">", "@", ":":
                scanner.advance()
            default:
                throw scanner.error("unexpected '\(c)'")
            }
        }
    }
}

extension PromQLNames {
    /// Grafana's `label_values(metric, label)` (or `label_values(label)`) in a template
    /// variable: the metric's selector, and the label as a grouping label of that metric.
    init(grafanaVariableQuery query: String) throws {
        let trimmed = query.trimmingCharacters(in: .whitespaces)
        guard trimmed.hasPrefix("label_values("), trimmed.hasSuffix(")") else {
            try self.init(trimmed)  // query_result(…) and the like: plain PromQL inside
            return
        }
        let inner = trimmed.dropFirst("label_values(".count).dropLast()
        guard let comma = inner.lastIndex(of: ",") else {
            self.init()
            groupingLabels = [inner.trimmingCharacters(in: .whitespaces)]
            return
        }
        try self.init(String(inner[..<comma]))
        groupingLabels.insert(inner[inner.index(after: comma)...].trimmingCharacters(in: .whitespaces))
    }

    private init() {}
}

/// A cursor over the expression's scalars.
private struct Scanner {
    let chars: [Unicode.Scalar]
    let expression: String
    var index = 0

    init(_ chars: [Unicode.Scalar], expression: String) {
        self.chars = chars
        self.expression = expression
    }

    static func isIdentifierStart(_ c: Unicode.Scalar) -> Bool {
        c == "_" || c == ":" || ("a"..."z").contains(c) || ("A"..."Z").contains(c)
    }

    static func isDigit(_ c: Unicode.Scalar) -> Bool { ("0"..."9").contains(c) }

    static func isIdentifier(_ c: Unicode.Scalar) -> Bool { isIdentifierStart(c) || isDigit(c) }

    func error(_ what: String) -> TestFailure {
        TestFailure("PromQL: \(what) at offset \(index) of: \(expression)")
    }

    func peek(_ ahead: Int = 0) -> Unicode.Scalar? {
        index + ahead < chars.count ? chars[index + ahead] : nil
    }

    mutating func advance() { index += 1 }

    mutating func skipSpace() {
        while let c = peek(), c == " " || c == "\t" || c == "\n" || c == "\r" { advance() }
    }

    func peekSkippingSpace() -> Unicode.Scalar? {
        var copy = self
        copy.skipSpace()
        return copy.peek()
    }

    /// The identifier after any blanks, without moving.
    func wordAfterSpace() -> String? {
        var copy = self
        copy.skipSpace()
        guard let c = copy.peek(), Self.isIdentifierStart(c) else { return nil }
        return copy.identifier()
    }

    mutating func identifier() -> String {
        var word = ""
        while let c = peek(), Self.isIdentifier(c) {
            word.unicodeScalars.append(c)
            advance()
        }
        return word
    }

    /// A quoted string; its value with `\` escapes resolved (raw for backquotes).
    mutating func string() throws(TestFailure) -> String {
        guard let quote = peek() else { throw error("a string expected") }
        advance()
        var value = ""
        while let c = peek() {
            advance()
            if c == quote { return value }
            if c == "\\" && quote != "`" {
                guard let escaped = peek() else { break }
                advance()
                value.unicodeScalars.append(escaped)
            } else {
                value.unicodeScalars.append(c)
            }
        }
        throw error("unclosed string")
    }

    /// `[5m]`, `[$__rate_interval]`, `[1h:5m]`.
    mutating func skipBrackets() throws(TestFailure) {
        advance()
        while let c = peek() {
            advance()
            if c == "]" { return }
            if c == "[" || c == "{" || c == "\"" { throw error("unexpected '\(c)' in a range") }
        }
        throw error("unclosed '['")
    }

    /// `$name`, `${name}`, `${name:format}`.
    mutating func skipVariable() throws(TestFailure) {
        advance()
        if peek() == "{" {
            while let c = peek() {
                advance()
                if c == "}" { return }
            }
            throw error("unclosed '${'")
        }
        guard let c = peek(), Self.isIdentifierStart(c) else { throw error("a variable name expected after '$'") }
        _ = identifier()
    }

    /// `{label op "value", …}`, the cursor on the `{`.
    mutating func matchers() throws(TestFailure) -> [PromQLNames.Matcher] {
        skipSpace()
        guard peek() == "{" else { throw error("'{' expected") }
        advance()
        var result: [PromQLNames.Matcher] = []
        while true {
            skipSpace()
            if peek() == "}" {
                advance()
                return result
            }
            guard let c = peek(), Self.isIdentifierStart(c) else { throw error("a label name expected") }
            let label = identifier()
            skipSpace()
            let op: String
            switch (peek(), peek(1)) {
            case ("=", "~"), ("!", "~"), ("!", "="):
                op = "\(peek()!)\(peek(1)!)"
                index += 2
            case ("=", _):
                op = "="
                advance()
            default:
                throw error("a matcher operator (=, !=, =~, !~) expected after '\(label)'")
            }
            skipSpace()
            guard let quote = peek(), quote == "\"" || quote == "'" || quote == "`" else {
                throw error("a quoted value expected after '\(label)\(op)'")
            }
            result.append(PromQLNames.Matcher(label: label, op: op, value: try string()))
            skipSpace()
            if peek() == "," { advance() } else if peek() != "}" { throw error("',' or '}' expected") }
        }
    }

    /// `(a, b)` after `by` and its kin, the cursor before the `(`.
    mutating func labelList() throws(TestFailure) -> [String] {
        skipSpace()
        advance()
        var labels: [String] = []
        while true {
            skipSpace()
            guard let c = peek() else { throw error("unclosed label list") }
            if c == ")" {
                advance()
                return labels
            }
            if c == "," {
                advance()
                continue
            }
            guard Self.isIdentifierStart(c) else { throw error("a label name expected in a label list") }
            labels.append(identifier())
        }
    }
}
