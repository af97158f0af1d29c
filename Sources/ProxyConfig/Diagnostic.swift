/// How bad a conf problem is: errors refuse the conf, warnings only inform.
package enum Severity: String, Sendable, Hashable {
    case error, warning
}

/// One conf problem, printed like a compiler message: `PATH:LINE:COLUMN: error: MESSAGE`.
package struct Diagnostic: Sendable, Hashable, CustomStringConvertible {
    /// The conf path as the user gave it.
    package var file: String
    /// 1-based line.
    package var line: Int
    /// 1-based column, counted in Characters, so a tab or an `é` is one column (docs/CONFIG.md, "Diagnostics").
    package var column: Int
    /// Error or warning.
    package var severity: Severity
    /// What is wrong and what to write instead.
    package var message: String

    /// Creates a diagnostic at a resolved line and column.
    package init(file: String, line: Int, column: Int, severity: Severity, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.severity = severity
        self.message = message
    }

    /// `PATH:LINE:COLUMN: error: MESSAGE`.
    package var description: String { "\(file):\(line):\(column): \(severity.rawValue): \(message)" }
}

/// A place in the conf text: UTF-8 offset of the token, its line and the offset
/// where that line starts. Columns are resolved only when diagnostics are
/// rendered, so lexing stays a byte scan.
struct SourceLocation: Hashable, Sendable {
    var offset: Int
    var line: Int
    var lineStart: Int

    static let start = SourceLocation(offset: 0, line: 1, lineStart: 0)
}

/// A diagnostic before its column is resolved.
struct PendingDiagnostic {
    var location: SourceLocation
    var severity: Severity
    var message: String
    /// Insertion order, to keep the sort stable.
    var sequence: Int
}

/// Collects diagnostics during a load and resolves them in source order.
struct DiagnosticSink {
    private(set) var pending: [PendingDiagnostic] = []
    private var seen: Set<String> = []
    private(set) var errorCount = 0

    mutating func error(_ message: String, at location: SourceLocation) {
        add(.error, message, at: location)
    }

    mutating func warning(_ message: String, at location: SourceLocation) {
        add(.warning, message, at: location)
    }

    private mutating func add(_ severity: Severity, _ message: String, at location: SourceLocation) {
        // Inherited settings are checked once per route; the same finding at the
        // same token is reported once.
        let key = "\(location.offset)|\(severity.rawValue)|\(message)"
        guard seen.insert(key).inserted else { return }
        if severity == .error { errorCount += 1 }
        pending.append(
            PendingDiagnostic(location: location, severity: severity, message: message, sequence: pending.count))
    }

    /// Resolves columns in one pass over the text (linear even for many
    /// diagnostics on one 10 MB line) and returns them in source order.
    func resolve(text: String, path: String) -> [Diagnostic] {
        let sorted = pending.sorted {
            ($0.location.offset, $0.sequence) < ($1.location.offset, $1.sequence)
        }
        let utf8 = text.utf8
        var result: [Diagnostic] = []
        result.reserveCapacity(sorted.count)
        var lastLineStart = -1
        var lastOffset = 0
        var lastColumn = 1
        for item in sorted {
            let location = item.location
            let column: Int
            let clampedOffset = min(max(location.offset, location.lineStart), utf8.count)
            if location.lineStart == lastLineStart, clampedOffset >= lastOffset {
                column = lastColumn + characterCount(utf8, from: lastOffset, to: clampedOffset, in: text)
            } else {
                column = 1 + characterCount(utf8, from: location.lineStart, to: clampedOffset, in: text)
            }
            lastLineStart = location.lineStart
            lastOffset = clampedOffset
            lastColumn = column
            result.append(
                Diagnostic(
                    file: path, line: location.line, column: column, severity: item.severity, message: item.message))
        }
        return result
    }

    private func characterCount(_ utf8: String.UTF8View, from: Int, to: Int, in text: String) -> Int {
        guard to > from else { return 0 }
        let start = utf8.index(utf8.startIndex, offsetBy: from)
        let end = utf8.index(utf8.startIndex, offsetBy: to)
        return text[start..<end].count
    }
}

/// Shortens user text quoted in a message (a 10 MB word must not become a 10 MB line).
func quoted(_ text: String, limit: Int = 60) -> String {
    var shown = text
    // prefix(limit + 1) keeps this O(limit) even for a huge word.
    if text.prefix(limit + 1).count > limit {
        shown = String(text.prefix(limit)) + "…"
    }
    // Control characters would garble the terminal; show them escaped.
    if shown.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
        shown = String(
            shown.unicodeScalars.map { scalar -> String in
                scalar.value < 0x20 || scalar.value == 0x7F ? scalar.escaped(asASCII: true) : String(scalar)
            }.joined())
    }
    return "'\(shown)'"
}
