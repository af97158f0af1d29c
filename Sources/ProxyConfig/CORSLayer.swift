import CORSPolicy

/// The four list directives that accept `*`.
enum ListField: String, CaseIterable {
    case allowOrigin = "allow_origin"
    case allowMethods = "allow_methods"
    case allowHeaders = "allow_headers"
    case exposeHeaders = "expose_headers"

    /// What to write instead of `*` when credentials are on.
    var listInstead: String {
        switch self {
        case .allowOrigin: return "list the origins"
        case .allowMethods: return "list the methods"
        case .allowHeaders, .exposeHeaders: return "list the header names"
        }
    }
}

/// A list directive's values in one block, and where its `*` was written.
struct ListSpec {
    var items: [String] = []
    /// `items` as compared for duplicates (lowercased for header names), for linear de-duplication.
    var seenItems: Set<String> = []
    var origins: [(entry: OriginEntry, location: SourceLocation)] = []
    var star: SourceLocation?
}

/// The CORS directives written in one block (`cors {}` or a route), with
/// their locations: effective settings are computed by layering a route over
/// `cors {}` over the built-in defaults (docs/CONFIG.md §6), and diagnostics point into the layer that
/// wrote the value.
struct CORSLayer {
    var lists: [ListField: ListSpec] = [:]
    var credentials: (value: Bool, location: SourceLocation)?
    var maxAgeMilliseconds: Int64?
    var allowPrivateNetwork: Bool?
    var enforce: Enforcement?
    var preflightStatus: Int?
    /// `websocket on|off`, and where the directive was written (for the `allow_origin *` warning).
    var websocket: (value: Bool, location: SourceLocation)?
    /// Scalar directives already given in this block (a second one is refused).
    var seen: [String: SourceLocation] = [:]
    /// Every CORS directive of the block, for the `cors off` warning.
    var directives: [(name: String, location: SourceLocation)] = []

    /// Applies this layer over `settings`; a list given here replaces the inherited one.
    func apply(to settings: inout CORSSettings) {
        if let spec = lists[.allowOrigin] {
            // Linear de-duplication: a conf may list thousands of origins.
            var seen = Set<OriginEntry>()
            var unique: [OriginEntry] = []
            for (entry, _) in spec.origins where seen.insert(entry).inserted { unique.append(entry) }
            settings.allowOrigin = unique
        }
        if let spec = lists[.allowMethods] { settings.allowMethods = spec.tokenList }
        if let spec = lists[.allowHeaders] { settings.allowHeaders = spec.headerTokenList }
        if let spec = lists[.exposeHeaders] { settings.exposeHeaders = spec.tokenList }
        if let credentials { settings.allowCredentials = credentials.value }
        if let maxAgeMilliseconds { settings.maxAgeMilliseconds = maxAgeMilliseconds }
        if let allowPrivateNetwork { settings.allowPrivateNetwork = allowPrivateNetwork }
        if let enforce { settings.enforce = enforce }
        if let preflightStatus { settings.preflightStatus = preflightStatus }
        if let websocket { settings.websocket = websocket.value }
    }
}

extension ListSpec {
    /// `*` anywhere in the list means any (docs/CONFIG.md §6: `*` beside others is `*` alone).
    var tokenList: TokenList { star != nil ? .any : .list(items) }

    /// For `allow_headers`, `*` beside names keeps the names: `*` never covers
    /// `Authorization`, so `allow_headers * Authorization` must still allow it by name.
    var headerTokenList: TokenList {
        guard star != nil else { return .list(items) }
        let named = items.filter { $0 != "*" }
        return named.isEmpty ? .any : .list(["*"] + named)
    }
}
