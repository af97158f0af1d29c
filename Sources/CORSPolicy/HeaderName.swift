import HeaderFields

/// Canonical names of the headers the decision adds, and the values it sends
/// unchanged on every response.
package enum CORSHeader {
    package static let allowOrigin = "Access-Control-Allow-Origin"
    package static let allowMethods = "Access-Control-Allow-Methods"
    package static let allowHeaders = "Access-Control-Allow-Headers"
    package static let allowCredentials = "Access-Control-Allow-Credentials"
    package static let exposeHeaders = "Access-Control-Expose-Headers"
    package static let maxAge = "Access-Control-Max-Age"
    package static let allowPrivateNetwork = "Access-Control-Allow-Private-Network"
    package static let vary = "Vary"
    package static let contentLength = "Content-Length"
    /// The `Vary` value of every preflight response, allowed or denied (docs/DESIGN.md, "Response headers").
    package static let preflightVary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
}

/// Header names compared without regard to ASCII case, looked up straight from
/// a request line's bytes: no lowercased copy, so no allocation per name. Keyed
/// by a 64-bit FNV-1a hash of the lowercased bytes; a hit is confirmed byte by byte.
struct HeaderNameSet: Sendable {
    /// Lowercased names by hash (a list, should two names ever share a hash).
    private var byHash: [UInt64: [String]] = [:]

    init(_ names: [String]) {
        for name in names { insert(name) }
    }

    mutating func insert(_ name: String) {
        let lower = name.lowercased()
        var copy = lower
        let hash = copy.withUTF8 { Self.hash($0) }
        if byHash[hash]?.contains(lower) == true { return }
        byHash[hash, default: []].append(lower)
    }

    func contains(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !byHash.isEmpty, let candidates = byHash[Self.hash(bytes)] else { return false }
        for candidate in candidates where ASCII.equalsIgnoringCase(bytes, candidate.utf8) { return true }
        return false
    }

    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(ASCII.lowercased(byte))) &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    static func isAuthorization(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        ASCII.equalsLowercase(bytes, "authorization")
    }
}

/// RFC 9110 `tchar`: what a method or header name may be made of. Names that are
/// echoed back (`*`) must be tokens, so nothing odd is ever reflected.
@inline(__always) func isTokenChar(_ b: UInt8) -> Bool {
    if isAlpha(b) || isDigit(b) { return true }
    switch b {
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
        UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
        UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
        return true
    default:
        return false
    }
}

func isToken<S: StringProtocol>(_ text: S) -> Bool {
    !text.isEmpty && text.utf8.allSatisfy(isTokenChar)
}

func isToken(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    !bytes.isEmpty && bytes.allSatisfy(isTokenChar)
}

@inline(__always) func isOptionalWhitespace(_ b: UInt8) -> Bool {
    b == UInt8(ascii: " ") || b == UInt8(ascii: "\t")
}

/// `text` without leading and trailing spaces and tabs; a slice, no copy.
func trimmedOWS(_ text: Substring) -> Substring {
    let utf8 = text.utf8
    var start = utf8.startIndex
    var end = utf8.endIndex
    while start < end, isOptionalWhitespace(utf8[start]) { start = utf8.index(after: start) }
    while end > start, isOptionalWhitespace(utf8[utf8.index(before: end)]) { end = utf8.index(before: end) }
    return text[start..<end]
}

/// The slice as a String, reusing `whole`'s storage when the slice is all of it.
func string(_ slice: Substring, of whole: String) -> String {
    slice.utf8.count == whole.utf8.count ? whole : String(slice)
}
