import TestSupport

/// One sample of a Prometheus text exposition: `name{label="value",…} number`.
struct PrometheusSample: Equatable {
    var name: String
    var labels: [String: String]
    var value: Double
}

/// A scrape of `/metrics`, parsed: the samples and each family's `# TYPE`.
struct PrometheusScrape {
    var samples: [PrometheusSample] = []
    /// Family name → `counter`, `gauge`, `histogram`, …
    var types: [String: String] = [:]

    /// Parses the text format (version 0.0.4). A line it cannot read is an error, so a
    /// malformed exposition fails the test instead of hiding a series.
    init(_ text: String) throws {
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4 else { throw TestFailure("bad TYPE line: \(line)") }
                types[String(parts[2])] = String(parts[3])
                continue
            }
            if line.hasPrefix("#") { continue }
            samples.append(try Self.sample(Substring(line)))
        }
    }

    private static func sample(_ line: Substring) throws -> PrometheusSample {
        var rest = line[...]
        let name = String(rest.prefix { $0 != "{" && $0 != " " })
        guard !name.isEmpty else { throw TestFailure("no metric name: \(line)") }
        rest = rest.dropFirst(name.count)
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                let label = String(rest.prefix { $0 != "=" })
                rest = rest.dropFirst(label.count)
                guard rest.hasPrefix("=\"") else { throw TestFailure("bad label in: \(line)") }
                rest = rest.dropFirst(2)
                var value = ""
                while let c = rest.first, c != "\"" {
                    if c == "\\" {
                        rest = rest.dropFirst()
                        switch rest.first {
                        case "n": value.append("\n")
                        case .some(let escaped): value.append(escaped)
                        case nil: throw TestFailure("unterminated label value in: \(line)")
                        }
                    } else {
                        value.append(c)
                    }
                    rest = rest.dropFirst()
                }
                guard rest.first == "\"" else { throw TestFailure("unterminated label value in: \(line)") }
                rest = rest.dropFirst()
                labels[label] = value
                if rest.first == "," { rest = rest.dropFirst() }
                guard !rest.isEmpty else { throw TestFailure("unclosed '{' in: \(line)") }
            }
            rest = rest.dropFirst()
        }
        let number = rest.trimmingPrefix(" ").prefix { $0 != " " }
        let value: Double?
        switch number {
        case "+Inf": value = .infinity
        case "-Inf": value = -.infinity
        case "NaN": value = .nan
        default: value = Double(number)
        }
        guard let value else { throw TestFailure("bad value in: \(line)") }
        return PrometheusSample(name: name, labels: labels, value: value)
    }

    /// The samples of one series name (`…_bucket`, `…_total`, …).
    func samples(named name: String) -> [PrometheusSample] { samples.filter { $0.name == name } }
}
