// Times the old engine (Swift's backtracking Regex) and the new one (OriginRegex, a Pike VM)
// on an everyday origin pattern and on patterns a hostile Origin makes a backtracker explode on.
//   swift run -c release RegexBench [--old-budget SECONDS]
// Numbers vary with machine load; run it on a quiet machine and compare within one run.
import CORSPolicy

let clock = ContinuousClock()

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// Nanoseconds per call of `body`, repeated for about a quarter of a second (best of three).
func nanosecondsPerCall(_ body: () -> Bool) -> (Double, Bool) {
    var result = body()
    var iterations = 1
    while seconds(clock.measure { for _ in 0..<iterations { result = body() } }) < 0.05 { iterations *= 2 }
    let best = (0..<3).map { _ in seconds(clock.measure { for _ in 0..<iterations { result = body() } }) }.min()!
    return (best / Double(iterations) * 1e9, result)
}

func format(_ nanoseconds: Double) -> String {
    switch nanoseconds {
    case ..<10_000: return "\(Int(nanoseconds + 0.5)) ns"
    case ..<10_000_000: return "\(Int(nanoseconds / 1000 + 0.5)) µs"
    default: return "\(Int(nanoseconds / 1_000_000 + 0.5)) ms"
    }
}

let arguments = CommandLine.arguments
let oldBudget = arguments.firstIndex(of: "--old-budget").flatMap { Double(arguments[$0 + 1]) } ?? 5

print("## Everyday pattern (ns/match, best of three runs)\n")
print("| pattern | origin | matches | old (Swift Regex) | new (OriginRegex) |")
print("|---|---|---|---:|---:|")
let everyday = "^https://[a-z0-9-]+\\.example\\.com$"
for origin in ["https://app.example.com", "https://app.example.com.evil.net", "https://evil.net"] {
    let old = try SwiftRegexOriginMatcher(everyday)
    let new = OriginRegex(everyday)!
    let (oldTime, oldResult) = nanosecondsPerCall { old.wholeMatches(origin) }
    let (newTime, newResult) = nanosecondsPerCall { new.wholeMatches(origin) }
    precondition(oldResult == newResult, "the engines disagree on \(origin)")
    print("| `\(everyday)` | `\(origin)` | \(newResult) | \(format(oldTime)) | \(format(newTime)) |")
}

print("\n## Hostile origins (one match; the old engine is stopped once a match takes over \(oldBudget) s)\n")
print("| pattern | origin | bytes | old (Swift Regex) | new (OriginRegex) |")
print("|---|---|---:|---:|---:|")
let hostile: [(pattern: String, origin: (Int) -> String, shape: String)] = [
    ("^https://(a+)+\\.example\\.com$", { "https://" + String(repeating: "a", count: $0) }, "https://aaa…"),
    ("^(a|a)*$", { String(repeating: "a", count: $0) + "b" }, "aaa…b"),
    ("^(a*)*b$", { String(repeating: "a", count: $0) }, "aaa…"),
    ("(x+x+)+y", { String(repeating: "x", count: $0) }, "xxx…"),
]
for (pattern, makeOrigin, shape) in hostile {
    let old = try SwiftRegexOriginMatcher(pattern)
    let new = OriginRegex(pattern)!
    var oldGaveUp = false
    for length in [10, 14, 18, 22, 26, 30, 1000, 5000, 32768] {
        let origin = makeOrigin(length)
        let (newTime, newResult) = nanosecondsPerCall { new.wholeMatches(origin) }
        var oldText = "not run"
        if !oldGaveUp {
            var oldResult = false
            let elapsed = seconds(clock.measure { oldResult = old.wholeMatches(origin) })
            precondition(oldResult == newResult, "the engines disagree on \(pattern) at \(length) bytes")
            oldText = format(elapsed * 1e9)
            oldGaveUp = elapsed > oldBudget
        }
        print("| `\(pattern)` | `\(shape)` | \(origin.utf8.count) | \(oldText) | \(format(newTime)) |")
    }
}

// The new engine's worst case: a program at the size cap with every instruction alive at
// every byte, against an Origin header as long as the request head allows (32 KiB). Only a
// conf can bring such a pattern; the Origin alone cannot make an everyday pattern cost this.
print("\n## New engine, worst case at the program cap\n")
let widest = "(?:.{0,9990})*"
let wide = OriginRegex(widest)!
let longOrigin = String(repeating: "a", count: 32 * 1024)
let (wideTime, _) = nanosecondsPerCall { wide.wholeMatches(longOrigin) }
print("`\(widest)` against 32 KiB of `a`: \(format(wideTime)) per match")
