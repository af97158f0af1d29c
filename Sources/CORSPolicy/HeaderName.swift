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
    /// The `Vary` value of every preflight response, allowed or denied (SPEC 3).
    package static let preflightVary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
}

/// A header name compared and hashed without regard to ASCII case, so a name
/// sliced out of a request line can be looked up without lowercasing (and
/// allocating) a copy.
struct CaseInsensitiveName: Hashable {
    let text: Substring

    init(_ text: Substring) { self.text = text }

    static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.text.utf8.elementsEqual(rhs.text.utf8) { lowercased($0) == lowercased($1) }
    }

    func hash(into hasher: inout Hasher) {
        var count = 0
        for byte in text.utf8 {
            hasher.combine(lowercased(byte))
            count += 1
        }
        hasher.combine(count)
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
