/// Header names clients send on almost every request, as static strings.
///
/// A `String` made from bytes longer than 15 is a heap allocation (and a reference to
/// count); a string literal is neither. Browsers send a dozen such names per request
/// (`Access-Control-Request-Headers`, `Accept-Language`, `Sec-Fetch-Mode`, …), so the
/// parser hands out these literals when a name matches one byte for byte, spelled as
/// sent: forwarding keeps the client's spelling either way.
enum KnownHeaderNames {
    /// Names longer than 15 bytes (shorter ones are stored inline in `String` anyway),
    /// in the spellings browsers and common clients use.
    private static let names: [String] = [
        "Access-Control-Request-Method", "Access-Control-Request-Headers",
        "Access-Control-Request-Private-Network", "access-control-request-method",
        "access-control-request-headers",
        "Accept-Encoding", "Accept-Language", "accept-encoding", "accept-language",
        "Content-Type", "Content-Length", "content-length", "Cache-Control", "cache-control",
        "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-Dest", "Sec-Fetch-User",
        "sec-fetch-mode", "sec-fetch-site", "sec-fetch-dest", "sec-fetch-user",
        "sec-ch-ua-mobile", "sec-ch-ua-platform", "Upgrade-Insecure-Requests",
        "If-Modified-Since", "If-None-Match", "Transfer-Encoding", "X-Forwarded-For",
        "X-Forwarded-Proto", "X-Forwarded-Host", "X-Requested-With", "Proxy-Connection",
    ].filter { $0.utf8.count > 15 }

    /// Names grouped by length, so a lookup compares only same-length candidates.
    private static let byLength: [[String]] = {
        var table = [[String]](repeating: [], count: 64)
        for name in names { table[name.utf8.count].append(name) }
        return table
    }()

    /// The name as a `String`, without allocating when it is a known one.
    @inline(__always)
    static func string(_ bytes: UnsafeRawBufferPointer) -> String {
        let count = bytes.count
        if count > 15 && count < 64 {
            for candidate in byLength[count] where candidate.utf8.elementsEqual(bytes) {
                // A literal: immortal storage, nothing allocated or counted.
                return candidate
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
