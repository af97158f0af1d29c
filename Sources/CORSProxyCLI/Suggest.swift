import ArgumentParser
import PolicySuggestion
import ProxyConfig

#if canImport(Glibc)
    import Glibc
#endif

/// `cors-proxy suggest`: from the proxy's own log, the conf lines that would allow the
/// requests it denied or reported.
struct Suggest: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "From the proxy's log, suggest the allow_origin, allow_methods and allow_headers lines that would allow the requests it denied or reported.",
        discussion: """
            Reads text and JSON lines (mixed is fine) from LOG, or from stdin when LOG is -. \
            Exit status: 0 something to suggest (conf lines or items that need a decision), 1 nothing, \
            2 the log cannot be read (or the conf given with --config is invalid).
            """)

    @Option(
        help: ArgumentHelp(
            "The conf the log was written under: each line then holds the route's current values and the additions.",
            discussion: "Read only when given (no $CORS_PROXY_CONFIG or default path)."))
    var config: String?

    @Option(help: "Only this route, as written in the conf: /api/ or '= /healthz'.")
    var route: String?

    @Option(name: .customLong("min-count"), help: "Leave out every item seen fewer than N times.")
    var minCount = 1

    @Argument(help: "The proxy's log, or - for stdin.")
    var log: String

    func validate() throws {
        guard minCount >= 1 else { throw ValidationError("--min-count takes a number of 1 or more") }
    }

    func run() throws {
        var configuration: ProxyConfiguration?
        if let config {
            let result = ConfigOptions.load(path: config)
            printDiagnostics(result.diagnostics.filter { $0.severity == .error })
            guard let loaded = result.configuration, result.errors.isEmpty else { throw ExitCode(2) }
            configuration = loaded
        }
        var digest = DenialDigest()
        do {
            try readLines(of: log) { digest.add(line: $0) }
        } catch {
            SystemIO.writeError("cors-proxy: error: \(error)\n")
            throw ExitCode(2)
        }
        let suggestion = Suggester(configuration: configuration, minCount: minCount, route: route).suggest(digest)
        print(suggestion.text(log: log, configuration: config), terminator: "")
        if !suggestion.routes.contains(where: { !$0.isEmpty }) { throw ExitCode(1) }
    }
}

/// A log that could not be read, in words.
struct LogReadError: Error, CustomStringConvertible {
    var path: String
    var reason: String
    var description: String { "cannot read \(path == "-" ? "stdin" : path): \(reason)" }
}

/// Calls `body` with each line of the file at `path` (`-`: stdin), read in blocks: a log of
/// any size takes the memory of its longest line.
func readLines(of path: String, _ body: (Substring) -> Void) throws {
    let fd = path == "-" ? STDIN_FILENO : open(path, O_RDONLY)
    guard fd >= 0 else { throw LogReadError(path: path, reason: String(cString: strerror(errno))) }
    defer { if fd != STDIN_FILENO { close(fd) } }
    var block = [UInt8](repeating: 0, count: 1 << 16)
    var pending: [UInt8] = []
    while true {
        let count = block.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            throw LogReadError(path: path, reason: String(cString: strerror(errno)))
        }
        if count == 0 { break }
        var start = 0
        for index in 0..<count where block[index] == UInt8(ascii: "\n") {
            pending.append(contentsOf: block[start..<index])
            body(Substring(String(decoding: pending, as: UTF8.self)))
            pending.removeAll(keepingCapacity: true)
            start = index + 1
        }
        pending.append(contentsOf: block[start..<count])
    }
    if !pending.isEmpty { body(Substring(String(decoding: pending, as: UTF8.self))) }
}
