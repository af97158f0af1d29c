/// One lexical unit of the conf.
struct Token {
    enum Kind: Equatable {
        /// A bare word or a quoted string, after `${…}` expansion.
        case word
        /// `;`
        case semicolon
        /// End of line (comments are skipped; the newline still ends a directive).
        case newline
        /// `{`
        case open
        /// `}`
        case close
        case end
    }

    var kind: Kind
    /// The word's value; empty for punctuation.
    var text: String
    var location: SourceLocation
    /// Written in double quotes (so `"{"` is a word, not a brace).
    var quoted: Bool = false
    /// The lexer already reported an error inside this word (unset variable,
    /// unclosed quote): the parser must not pile a second error on its value.
    var poisoned: Bool = false
}

/// Splits conf text into tokens, expanding `${NAME}` / `${NAME:-default}`.
///
/// A byte scan over UTF-8 (every syntax character is ASCII), one pass, no
/// recursion and no backtracking, so garbage, huge lines and deep nesting
/// cost linear time. Errors go to the sink; the lexer always moves forward.
struct Lexer {
    private let bytes: [UInt8]
    private let environment: [String: String]
    private var index = 0
    private var line = 1
    private var lineStart = 0

    init(text: String, environment: [String: String]) {
        self.bytes = Array(text.utf8)
        self.environment = environment
    }

    /// The 1-based column of `location`, in Characters like the sink's (for the few positions
    /// kept in the configuration, such as file paths; diagnostics resolve theirs in one pass).
    func column(of location: SourceLocation) -> Int {
        let end = min(max(location.offset, location.lineStart), bytes.count)
        return 1 + String(decoding: bytes[location.lineStart..<end], as: UTF8.self).count
    }

    private var location: SourceLocation { SourceLocation(offset: index, line: line, lineStart: lineStart) }

    private func location(at offset: Int) -> SourceLocation {
        SourceLocation(offset: offset, line: line, lineStart: lineStart)
    }

    mutating func next(_ sink: inout DiagnosticSink) -> Token {
        // Skip blanks and comments.
        while index < bytes.count {
            let byte = bytes[index]
            if isBlank(byte) {
                index += 1
            } else if byte == UInt8(ascii: "#") {
                while index < bytes.count, bytes[index] != UInt8(ascii: "\n") { index += 1 }
            } else {
                break
            }
        }
        guard index < bytes.count else {
            return Token(kind: .end, text: "", location: location)
        }
        let start = location
        switch bytes[index] {
        case UInt8(ascii: "\n"):
            index += 1
            line += 1
            lineStart = index
            return Token(kind: .newline, text: "", location: start)
        case UInt8(ascii: ";"):
            index += 1
            return Token(kind: .semicolon, text: "", location: start)
        case UInt8(ascii: "{"):
            index += 1
            return Token(kind: .open, text: "", location: start)
        case UInt8(ascii: "}"):
            index += 1
            return Token(kind: .close, text: "", location: start)
        case UInt8(ascii: "\""):
            return quotedWord(&sink)
        default:
            return bareWord(&sink)
        }
    }

    private mutating func bareWord(_ sink: inout DiagnosticSink) -> Token {
        let start = location
        var value: [UInt8] = []
        var runStart = index
        var poisoned = false
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "$"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "{") {
                value.append(contentsOf: bytes[runStart..<index])
                if !expand(into: &value, &sink) { poisoned = true }
                runStart = index
                continue
            }
            if isWordEnd(byte) { break }
            index += 1
        }
        let text: String
        if value.isEmpty {
            text = String(decoding: bytes[runStart..<index], as: UTF8.self)
        } else {
            value.append(contentsOf: bytes[runStart..<index])
            text = String(decoding: value, as: UTF8.self)
        }
        return Token(kind: .word, text: text, location: start, poisoned: poisoned)
    }

    private mutating func quotedWord(_ sink: inout DiagnosticSink) -> Token {
        let start = location
        index += 1  // opening quote
        var value: [UInt8] = []
        var poisoned = false
        while true {
            guard index < bytes.count, bytes[index] != UInt8(ascii: "\n") else {
                // A quoted string ends on its own line: an unclosed quote then
                // costs one line, not the rest of the file.
                sink.error("unclosed quote; end the string with '\"' on the same line", at: start)
                poisoned = true
                break
            }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                break
            }
            if byte == UInt8(ascii: "\\"), index + 1 < bytes.count,
                bytes[index + 1] == UInt8(ascii: "\"") || bytes[index + 1] == UInt8(ascii: "\\")
            {
                value.append(bytes[index + 1])
                index += 2
                continue
            }
            if byte == UInt8(ascii: "$"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "{") {
                if !expand(into: &value, &sink) { poisoned = true }
                continue
            }
            // Any other backslash stays, so regexes like "\." read as written.
            value.append(byte)
            index += 1
        }
        return Token(
            kind: .word, text: String(decoding: value, as: UTF8.self), location: start, quoted: true, poisoned: poisoned
        )
    }

    /// Expands the `${…}` at `index`; returns false (after reporting) when it
    /// is malformed or names an unset variable without a default.
    private mutating func expand(into value: inout [UInt8], _ sink: inout DiagnosticSink) -> Bool {
        let dollar = location
        let contentStart = index + 2
        var close = contentStart
        while close < bytes.count, bytes[close] != UInt8(ascii: "}"), bytes[close] != UInt8(ascii: "\n") {
            close += 1
        }
        guard close < bytes.count, bytes[close] == UInt8(ascii: "}") else {
            sink.error("'${' is not closed; write ${NAME} or ${NAME:-default} on one line", at: dollar)
            index = close
            return false
        }
        index = close + 1
        let content = bytes[contentStart..<close]
        var nameBytes = content
        var fallback: ArraySlice<UInt8>? = nil
        if let colon = content.firstIndex(of: UInt8(ascii: ":")), colon + 1 < close,
            bytes[colon + 1] == UInt8(ascii: "-")
        {
            nameBytes = content[contentStart..<colon]
            fallback = content[(colon + 2)..<close]
        }
        guard isVariableName(nameBytes) else {
            let shown = String(decoding: content, as: UTF8.self)
            sink.error(
                "\(quoted("${" + shown + "}")) is not a variable reference; write ${NAME} or ${NAME:-default} (NAME is letters, digits and '_')",
                at: dollar)
            return false
        }
        let name = String(decoding: nameBytes, as: UTF8.self)
        if let set = environment[name], !set.isEmpty {
            value.append(contentsOf: set.utf8)
        } else if let fallback {
            value.append(contentsOf: fallback)
        } else if environment[name] != nil {
            // Set but empty, and no default: the empty value is what was asked for.
        } else {
            sink.error(
                "environment variable \(name) is not set; set it or write ${\(name):-default}", at: dollar)
            return false
        }
        return true
    }
}

@inline(__always) private func isBlank(_ byte: UInt8) -> Bool {
    byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") || byte == 0x0B
        || byte == 0x0C
}

@inline(__always) private func isWordEnd(_ byte: UInt8) -> Bool {
    isBlank(byte) || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "#") || byte == UInt8(ascii: ";")
        || byte == UInt8(ascii: "{") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "\"")
}

private func isVariableName(_ bytes: ArraySlice<UInt8>) -> Bool {
    guard let first = bytes.first, first == UInt8(ascii: "_") || isLetter(first) else { return false }
    return bytes.allSatisfy { $0 == UInt8(ascii: "_") || isLetter($0) || ($0 >= 0x30 && $0 <= 0x39) }
}

@inline(__always) private func isLetter(_ byte: UInt8) -> Bool {
    (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
}
