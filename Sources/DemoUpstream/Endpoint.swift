import NIOHTTP1

/// What a request asks for. Decided once, from the method and the request target.
///
/// Routing looks at the path (the target up to `?`) after removing one leading
/// `/api/public`, `/api/private` or `/api` (only when followed by `/` or the end),
/// so that the example conf's routes can forward paths unchanged.
enum Endpoint: Sendable, Equatable {
    case healthz
    case itemsList  // GET/HEAD /items
    case itemWrite(id: Substring?)  // any other method on /items, or any method on /items/ID
    case me
    case echo
    case bytes(count: UInt64, chunked: Bool)
    case hashOf(count: UInt64)
    case upload
    case status(code: Int)
    case slow(milliseconds: Int64)
    case slowBody(milliseconds: Int64)
    case resetMidBody
    case closeBeforeHead
    case headersWithCORS
    case varyStar
    case gzip
    case setCookie
    /// `/timing-allowed`: 200 with `Timing-Allow-Origin: *`, so a page of another origin may
    /// read the resource timing details of its fetch (`nextHopProtocol` among them).
    case timingAllowed
    /// `/ws/refuse`: a WebSocket handshake answered with 403.
    case webSocketRefused
    // Control endpoints: not recorded, not counted.
    case requestLog
    case reset
    case stats
    case badRequest(String)
    case notFound

    var isControl: Bool {
        switch self {
        case .requestLog, .reset, .stats: return true
        default: return false
        }
    }

    /// Endpoints whose response describes the request body (hashed while streaming in).
    var hashesBody: Bool {
        switch self {
        case .echo, .upload: return true
        default: return false
        }
    }

    static let maxDelayMilliseconds: Int64 = 3_600_000

    static func route(method: HTTPMethod, target: String) -> Endpoint {
        var path = Self.path(of: target)
        path = Self.stripAPIPrefix(path)

        // Hot path first.
        if path == "/items" {
            return method == .GET || method == .HEAD ? .itemsList : .itemWrite(id: nil)
        }
        switch path {
        case "/healthz": return .healthz
        case "/me": return .me
        case "/echo": return .echo
        case "/upload": return .upload
        case "/reset-mid-body": return .resetMidBody
        case "/close-before-head": return .closeBeforeHead
        case "/headers-with-cors": return .headersWithCORS
        case "/vary-star": return .varyStar
        case "/gzip": return .gzip
        case "/set-cookie": return .setCookie
        case "/timing-allowed": return .timingAllowed
        case "/__requests": return .requestLog
        case "/__reset": return .reset
        case "/__stats": return .stats
        default: break
        }
        if path.hasPrefix("/echo/") { return .echo }
        if path == "/ws/refuse" { return .webSocketRefused }
        // Upgraded handshakes never get here (DemoWebSocket's upgrader took them).
        if path.hasPrefix("/ws/") { return .badRequest("a WebSocket handshake is required") }
        if let id = Self.argument(of: path, after: "/items/") {
            return .itemWrite(id: id)
        }
        if let arg = Self.argument(of: path, after: "/bytes/") {
            guard let count = UInt64(arg) else { return .badRequest("N must be a non-negative integer") }
            return .bytes(count: count, chunked: Self.queryHasChunked(target))
        }
        if let arg = Self.argument(of: path, after: "/hash-of/") {
            guard let count = UInt64(arg) else { return .badRequest("N must be a non-negative integer") }
            return .hashOf(count: count)
        }
        if let arg = Self.argument(of: path, after: "/status/") {
            guard let code = Int(arg), (200...599).contains(code) else {
                return .badRequest("CODE must be an integer from 200 to 599")
            }
            return .status(code: code)
        }
        if let arg = Self.argument(of: path, after: "/slow/") {
            guard let ms = Int64(arg), (0...Self.maxDelayMilliseconds).contains(ms) else {
                return .badRequest("MS must be an integer from 0 to 3600000")
            }
            return .slow(milliseconds: ms)
        }
        if let arg = Self.argument(of: path, after: "/slow-body/") {
            guard let ms = Int64(arg), (0...Self.maxDelayMilliseconds).contains(ms) else {
                return .badRequest("MS must be an integer from 0 to 3600000")
            }
            return .slowBody(milliseconds: ms)
        }
        return .notFound
    }

    /// The path part of a request target: origin-form up to `?`/`#`; for an absolute-form
    /// target (`http://host/p?q`) the path after the authority.
    static func path(of target: String) -> Substring {
        var t = Substring(target)
        if t.utf8.first != UInt8(ascii: "/"), let schemeEnd = t.firstRange(of: "://") {
            let afterAuthority = t[schemeEnd.upperBound...]
            if let slash = afterAuthority.utf8.firstIndex(of: UInt8(ascii: "/")) {
                t = afterAuthority[slash...]
            } else {
                return "/"
            }
        }
        // `?` and `#` are ASCII, so a UTF-8 index of one is a valid String index.
        if let end = t.utf8.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) {
            t = t[..<end]
        }
        return t
    }

    static func stripAPIPrefix(_ path: Substring) -> Substring {
        guard path.utf8.starts(with: "/api".utf8) else { return path }
        for prefix in ["/api/public", "/api/private", "/api"] where path.hasPrefix(prefix) {
            let rest = path.dropFirst(prefix.count)
            if rest.isEmpty { return "/" }
            if rest.first == "/" { return rest }
        }
        return path
    }

    /// The single path segment after `prefix` (non-empty, no further `/`), or nil.
    private static func argument(of path: Substring, after prefix: String) -> Substring? {
        guard path.hasPrefix(prefix) else { return nil }
        let rest = path.dropFirst(prefix.count)
        if rest.isEmpty || rest.contains("/") { return nil }
        return rest
    }

    /// `chunked=1`, `chunked=true` or a bare `chunked` in the query.
    private static func queryHasChunked(_ target: String) -> Bool {
        guard let q = target.firstIndex(of: "?") else { return false }
        var query = target[target.index(after: q)...]
        if let hash = query.firstIndex(of: "#") { query = query[..<hash] }
        for item in query.split(separator: "&") {
            if item == "chunked" || item == "chunked=1" || item == "chunked=true" { return true }
        }
        return false
    }
}
