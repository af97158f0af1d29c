/// What a user does with `cors-proxy suggest --config` output: for each `route PATTERN { … }`
/// fragment, replace that route's `allow_origin`, `allow_methods` and `allow_headers` lines in
/// the conf with the fragment's lines (its comments included). Routes must be written one
/// directive a line, with `route PATTERN {` on a line of its own.
package func mergeSuggestion(_ suggestion: String, into conf: String) -> String {
    var fragments: [String: [String]] = [:]
    var current: String?
    for line in suggestion.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
        if line.hasPrefix("route "), line.hasSuffix(" {") {
            current = String(line.dropLast(2))
            fragments[current!] = []
        } else if line == "}" {
            current = nil
        } else if let route = current {
            fragments[route]?.append(line)
        }
    }
    var out: [String] = []
    var inRoute: String?
    for line in conf.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
        let trimmed = line.drop { $0 == " " || $0 == "\t" }
        if inRoute == nil, trimmed.hasPrefix("route "), trimmed.hasSuffix(" {") {
            let head = String(trimmed.dropLast(2))
            out.append(line)
            if let fragment = fragments[head] {
                inRoute = head
                out.append(contentsOf: fragment)
            }
            continue
        }
        if inRoute != nil {
            if trimmed == "}" {
                inRoute = nil
            } else if trimmed.hasPrefix("allow_origin ") || trimmed.hasPrefix("allow_methods ")
                || trimmed.hasPrefix("allow_headers ")
            {
                continue
            }
        }
        out.append(line)
    }
    return out.joined(separator: "\n")
}
