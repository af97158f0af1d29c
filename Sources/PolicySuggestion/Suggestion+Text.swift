/// The text `cors-proxy suggest` prints: a summary comment, then per route a
/// `route PATTERN { … }` fragment whose `allow_*` lines can go into the conf as they are.
extension Suggestion {
    /// `log`: how the log was named (a path, or `-` for stdin); `configuration`: the conf's
    /// path when one was read.
    package func text(log: String, configuration: String?) -> String {
        var out: [String] = []
        let source = log == "-" ? "stdin" : log
        out.append(
            "# cors-proxy suggest: \(denialLines) denial \(plural(denialLines, "line")) (\(deniedLines) denied, \(reportedLines) reported) in \(linesRead) \(plural(linesRead, "line")) of \(source); \(skippedLines) \(plural(skippedLines, "line")) skipped (not cors-proxy log lines)"
        )
        if let configuration {
            out.append(
                "# with --config \(configuration): each allow_* line holds the route's current values, then the additions; it replaces that route's allow_* lines"
            )
        } else {
            out.append(
                "# without --config: each allow_* line holds only the additions; merge them into the route's current lines (a list written in a route replaces the one it inherits)"
            )
        }
        if minCount > 1 {
            out.append("# --min-count \(minCount): what was seen fewer than \(minCount) times is left out")
        }
        if let emptyReason, routes.allSatisfy(\.isEmpty) {
            out.append("# nothing to suggest: \(emptyReason)")
        }
        for route in routes {
            out.append("")
            out.append(contentsOf: Self.lines(route))
        }
        return out.joined(separator: "\n") + "\n"
    }

    private static func lines(_ route: Route) -> [String] {
        var out = ["route \(routeHead(route.label)) {"]
        if let note = route.note { out.append("    # \(note)") }
        for directive in route.directives {
            let values = (directive.current + directive.additions.map(\.value)).map(confWord)
            let counts = directive.additions.map { "\($0.value) \($0.seen.count)" }.joined(separator: ", ")
            out.append("    \(directive.name) \(values.joined(separator: " "))  # added: \(counts)")
            let width = directive.additions.map(\.value.count).max() ?? 0
            let countWidth = directive.additions.map { String($0.seen.count).count }.max() ?? 0
            for item in directive.additions {
                var line = "    #   " + detail(item.value, item.seen, width: width, countWidth: countWidth)
                if !item.hosts.isEmpty {
                    line += "  " + item.hosts.map { "\($0.host) \($0.count)" }.joined(separator: ", ")
                }
                out.append(line)
            }
        }
        if !route.heldBack.isEmpty {
            out.append("    # needs a decision:")
            let width = route.heldBack.map(\.value.count).max() ?? 0
            let countWidth = route.heldBack.map { String($0.seen.count).count }.max() ?? 0
            for item in route.heldBack {
                out.append(
                    "    #   " + detail(item.value, item.seen, width: width, countWidth: countWidth) + "  "
                        + item.reason)
            }
        }
        if route.isEmpty && route.note == nil { out.append("    # nothing to add") }
        out.append("}")
        return out
    }

    /// `VALUE  COUNT  FIRST .. LAST`, columns aligned within a block.
    private static func detail(_ value: String, _ seen: Seen, width: Int, countWidth: Int) -> String {
        let count = String(seen.count)
        let paddedValue = value + String(repeating: " ", count: max(0, width - value.count))
        let paddedCount = String(repeating: " ", count: max(0, countWidth - count.count)) + count
        return "\(paddedValue)  \(paddedCount)  \(seen.first) .. \(seen.last)"
    }

    /// `/api/` or `= /healthz`, the path quoted when the conf needs it.
    private static func routeHead(_ label: String) -> String {
        if label.hasPrefix("= ") { return "= " + confWord(String(label.dropFirst(2))) }
        return confWord(label)
    }

    private func plural(_ count: Int, _ word: String) -> String { count == 1 ? word : word + "s" }
}

/// A value as a conf argument: bare when the lexer reads it back whole, else quoted (a
/// `~REGEX` with `{n}` or a blank, say). Inside quotes only `\"` and `\\` are escapes, so a
/// backslash is doubled only where it would otherwise start one: `\.` stays `\.`.
func confWord(_ value: String) -> String {
    let special: Set<Character> = [" ", "\t", "#", ";", "{", "}", "\""]
    if !value.isEmpty, !value.contains(where: { special.contains($0) || $0.isNewline }) { return value }
    var quoted = "\""
    let characters = Array(value)
    for (index, character) in characters.enumerated() {
        if character == "\"" {
            quoted.append("\\")
        } else if character == "\\" {
            let next = index + 1 < characters.count ? characters[index + 1] : "\""
            if next == "\"" || next == "\\" { quoted.append("\\") }
        }
        quoted.append(character)
    }
    return quoted + "\""
}
