import CORSPolicy

/// A directive as read: its name, arguments, and the `{` when a block follows.
struct Statement {
    var name: Token
    var arguments: [Token]
    var blockOpen: Token?

    var directive: String { name.text }
}

/// An `upstream` being read.
struct UpstreamBuilder {
    var name: String
    var keyword: SourceLocation
    var config: UpstreamConfig?
    /// The block's `url` was refused already: do not also say it is missing.
    var urlFailed = false
    var connectTimeout: Int64?
    var timeout: Int64?
    var seen: [String: SourceLocation] = [:]
    /// Registered under `name` (false for a duplicate, which is only validated).
    var registered: Bool
    var caFile: ConfFile?
    var clientCertificate: ConfFile?
    var clientKey: ConfFile?
    /// The `off` of `tls_verify off` (nil: verify, the default), for its warning.
    var verifyOff: SourceLocation?
    /// Every TLS directive written, at its name: refused on an `http://` upstream.
    var tlsDirectives: [(name: String, location: SourceLocation)] = []
}

/// The `tls { }` block being read.
struct TLSBuilder {
    var keyword: SourceLocation
    /// The first `tls { }` of the conf (a second one is only validated).
    var applies: Bool
    var certificate: ConfFile?
    var key: ConfFile?
    var http2: Bool?
    var minimumVersion: MinimumTLSVersion?
    /// A directive was refused: do not also report the file as missing.
    var failed: Set<String> = []
    var seen: [String: SourceLocation] = [:]
}

/// A `route` being read.
struct RouteBuilder {
    var keyword: SourceLocation
    var kind: RouteKind
    var path: String
    /// The pattern was refused: validate the block, then drop the route.
    var valid: Bool
    var upstream: (name: String, location: SourceLocation)?
    var cors = CORSLayer()
    var corsOff: SourceLocation?
    var maxBodySize: Int64?
    var preserveHost: Bool?
    var stripPrefix: String?
    var seen: [String: SourceLocation] = [:]
}

/// Which block the parser is in.
enum Context {
    case top, cors, upstream, route, tls
}

/// The conf parser: reads statements iteratively (an explicit context plus a
/// skip counter, never recursion, so `{{{{…` thousands deep is just a counter),
/// validates each directive as it comes, reports every error and resyncs at
/// the end of the statement, then cross-checks the whole conf.
struct ConfigParser {
    var lexer: Lexer
    var sink = DiagnosticSink()
    /// The conf's path: in the positions kept for file checks, and to resolve relative paths.
    let path: String
    private var pushedBack: Token?

    // Block state.
    var context = Context.top
    var frameOpen: Token?
    var frameDirective: Token?
    /// Depth inside a block being skipped (unknown or misplaced directive's block).
    var skipDepth = 0
    var skipOpen: Token?

    // Blocks being read.
    var currentCORS = CORSLayer()
    /// The block being read is the first top-level `cors {}` (others are only validated).
    var currentCORSIsDefault = false
    var currentUpstream: UpstreamBuilder?
    var currentRoute: RouteBuilder?
    var currentTLS: TLSBuilder?

    // What the conf says so far.
    var listen: [(address: ListenAddress, location: SourceLocation)] = []
    var admin: (address: ListenAddress, location: SourceLocation)?
    var selfOrigins: Set<String> = []
    var upstreams: [String: UpstreamConfig] = [:]
    /// Every declared upstream name, valid or not, so a bad upstream does not
    /// also make each route that names it "undefined".
    var declaredUpstreams: [String: SourceLocation] = [:]
    var maxBodySize: Int64?
    var drainTimeout: Int64?
    var logFormat: ProxyConfiguration.LogFormat?
    var defaultCORS = CORSLayer()
    var defaultCORSLocation: SourceLocation?
    var routes: [RouteBuilder] = []
    var routeKeys: [String: SourceLocation] = [:]
    var topSeen: [String: SourceLocation] = [:]
    /// The `tls` argument of each `listen … tls`.
    var tlsListens: [SourceLocation] = []
    /// The first `tls { }` block's keyword, valid or not.
    var tlsBlockLocation: SourceLocation?
    /// A `tls` directive was written without its block (and reported).
    var tlsWithoutBlock = false
    /// The first `tls { }` block, when it is complete.
    var tlsSettings: ServerTLSSettings?

    init(text: String, environment: [String: String], path: String = "") {
        self.lexer = Lexer(text: text, environment: environment)
        self.path = path
    }

    /// The TLS files named so far (complete after `run()`), for the file checks.
    var tlsFiles: TLSFileReferences {
        TLSFileReferences(server: tlsSettings, upstreams: upstreams.compactMapValues(\.tls))
    }

    /// Where `location` is, for a value the configuration keeps (a file path).
    func position(_ location: SourceLocation) -> ConfPosition {
        ConfPosition(file: path, line: location.line, column: lexer.column(of: location))
    }

    // MARK: - Tokens and statements

    mutating func nextToken() -> Token {
        if let token = pushedBack {
            pushedBack = nil
            return token
        }
        return lexer.next(&sink)
    }

    /// Reads arguments up to `;`, newline, `{`, `}` or the end. A newline ends
    /// the directive (docs/CONFIG.md §1), so a block's `{` must be on the directive's line.
    private mutating func readStatement(name: Token) -> Statement {
        var arguments: [Token] = []
        while true {
            let token = nextToken()
            switch token.kind {
            case .word:
                arguments.append(token)
            case .semicolon:
                return Statement(name: name, arguments: arguments, blockOpen: nil)
            case .newline:
                return Statement(name: name, arguments: arguments, blockOpen: nil)
            case .open:
                return Statement(name: name, arguments: arguments, blockOpen: token)
            case .close, .end:
                // `}` also ends the last directive of a one-line block.
                pushedBack = token
                return Statement(name: name, arguments: arguments, blockOpen: nil)
            }
        }
    }

    // MARK: - Main loop

    /// Parses everything, then cross-checks; returns a configuration when the
    /// conf had no error (the caller reads `sink` for diagnostics).
    mutating func run() -> ProxyConfiguration? {
        loop: while true {
            let token = nextToken()
            if skipDepth > 0 {
                switch token.kind {
                case .open: skipDepth += 1
                case .close: skipDepth -= 1
                case .end:
                    if let skipOpen {
                        sink.error("this '{' is never closed; add '}'", at: skipOpen.location)
                    }
                    reportUnclosedFrame()
                    break loop
                default: break
                }
                continue
            }
            switch token.kind {
            case .newline, .semicolon:
                continue
            case .end:
                reportUnclosedFrame()
                break loop
            case .close:
                if context == .top {
                    sink.error("unexpected '}' with no open block; remove it", at: token.location)
                } else {
                    closeFrame()
                }
            case .open:
                sink.error(
                    "'{' must follow a block directive on the same line (cors {, upstream NAME {, route PATH {); move it up or remove it",
                    at: token.location)
                startSkipping(token)
            case .word:
                let statement = readStatement(name: token)
                handle(statement)
            }
        }
        return finish()
    }

    private mutating func reportUnclosedFrame() {
        guard context != .top, let frameOpen, let frameDirective else { return }
        sink.error(
            "the '{' of \(frameDirective.text) is never closed; add '}' at the end of the block", at: frameOpen.location
        )
    }

    mutating func startSkipping(_ open: Token) {
        skipDepth = 1
        skipOpen = open
    }

    mutating func openFrame(_ newContext: Context, statement: Statement) {
        context = newContext
        frameOpen = statement.blockOpen
        frameDirective = statement.name
    }

    private mutating func handle(_ statement: Statement) {
        switch context {
        case .top: handleTopLevel(statement)
        case .cors: handleCORSBlock(statement)
        case .upstream: handleUpstreamBlock(statement)
        case .route: handleRouteBlock(statement)
        case .tls: handleTLSBlock(statement)
        }
    }

    private mutating func closeFrame() {
        switch context {
        case .top: break
        case .cors:
            finishCORSLayer(currentCORS)
            if currentCORSIsDefault { defaultCORS = currentCORS }
            currentCORS = CORSLayer()
        case .upstream:
            if let builder = currentUpstream { finishUpstream(builder) }
            currentUpstream = nil
        case .route:
            if let builder = currentRoute { finishRoute(builder) }
            currentRoute = nil
        case .tls:
            if let builder = currentTLS { finishTLS(builder) }
            currentTLS = nil
        }
        context = .top
        frameOpen = nil
        frameDirective = nil
    }

    // MARK: - Shared checks

    /// Refuses a block after a directive that takes none, and skips the block.
    /// Returns false when there was one.
    mutating func refuseBlock(_ statement: Statement) -> Bool {
        guard let open = statement.blockOpen else { return true }
        sink.error("\(statement.directive) does not take a block; remove the '{ … }'", at: open.location)
        startSkipping(open)
        return false
    }

    /// Reports a directive that is refused here and skips its block, if any.
    mutating func refuse(_ statement: Statement, _ message: String) {
        sink.error(message, at: statement.name.location)
        if let open = statement.blockOpen { startSkipping(open) }
    }

    /// Exactly `count` arguments: a missing one is reported at the directive
    /// name, an extra one at the first extra argument (the token a user must remove).
    mutating func arity(_ statement: Statement, _ count: Int, usage: String) -> Bool {
        if statement.arguments.count < count {
            sink.error(
                "\(statement.directive) needs \(argumentWord(count)); write \(usage)", at: statement.name.location)
            return false
        }
        if statement.arguments.count > count {
            sink.error(
                "\(statement.directive) takes \(argumentWord(count)); remove \(quoted(statement.arguments[count].text)) (write \(usage))",
                at: statement.arguments[count].location)
            return false
        }
        return true
    }

    /// At least one argument, else an error at the directive name.
    mutating func atLeastOne(_ statement: Statement, usage: String) -> Bool {
        guard statement.arguments.isEmpty else { return true }
        sink.error("\(statement.directive) needs at least one value; write \(usage)", at: statement.name.location)
        return false
    }

    /// Refuses a second scalar directive in the same block.
    mutating func once(_ statement: Statement, in seen: inout [String: SourceLocation]) -> Bool {
        if let first = seen[statement.directive] {
            sink.error(
                "\(statement.directive) is already set on line \(first.line) of this block; keep one",
                at: statement.name.location)
            return false
        }
        seen[statement.directive] = statement.name.location
        return true
    }

    /// Reports a refused value at its token, unless the lexer already reported it.
    mutating func value<T>(_ result: Result<T, ValueError>, _ token: Token) -> T? {
        switch result {
        case .success(let value): return value
        case .failure(let error):
            if !token.poisoned { sink.error(error.message, at: token.location) }
            return nil
        }
    }

    func unknown(_ statement: Statement, expected: [String]) -> String {
        let name = statement.directive
        // Suggest from every directive: a typo of a misplaced one is still a typo.
        if name.utf8.count <= 40,
            let close = DirectiveNames.all.sorted().min(by: { editDistance(name, $0) < editDistance(name, $1) }),
            editDistance(name, close) <= 2
        {
            return "unknown directive \(quoted(name)); did you mean \(close)?"
        }
        return "unknown directive \(quoted(name)); expected one of: \(expected.joined(separator: ", "))"
    }
}

private func argumentWord(_ count: Int) -> String {
    switch count {
    case 1: return "one argument"
    case 2: return "two arguments"
    default: return "\(count) arguments"
    }
}

/// Levenshtein distance for "did you mean" (names are short; callers cap the length).
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8)
    let b = Array(b.utf8)
    guard !a.isEmpty else { return b.count }
    guard !b.isEmpty else { return a.count }
    var previous = Array(0...b.count)
    var current = Array(repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
