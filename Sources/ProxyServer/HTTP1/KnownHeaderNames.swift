/// Long header names clients send often, as static strings.
///
/// A `String` made from more than 15 bytes is a heap allocation (and a reference to
/// count); a string literal is neither, and shorter names are stored inline anyway.
/// Preflights carry two or three long names (`Access-Control-Request-Headers`, …) and
/// browsers add a few more (`Upgrade-Insecure-Requests`, `sec-ch-ua-platform`), so the
/// parser hands out these literals when a name matches one byte for byte, spelled as
/// sent: forwarding keeps the client's spelling either way.
enum KnownHeaderNames {
    /// Every one longer than 15 bytes, in the spellings browsers and common clients use.
    private static let names: [String] = [
        "Access-Control-Request-Method", "Access-Control-Request-Headers",
        "Access-Control-Request-Private-Network", "access-control-request-method",
        "access-control-request-headers", "access-control-request-private-network",
        "sec-ch-ua-mobile", "sec-ch-ua-platform", "Upgrade-Insecure-Requests",
        "If-Modified-Since", "If-Unmodified-Since", "Transfer-Encoding", "X-Forwarded-Proto",
        "X-Forwarded-Host", "X-Requested-With", "Proxy-Connection",
    ]

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
            for candidate in byLength[count] where equal(candidate, bytes) {
                // A literal: immortal storage, nothing allocated or counted.
                return candidate
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Byte equality on the literal's contiguous UTF-8 (`utf8.elementsEqual` walked the
    /// string's index model byte by byte: 2 % of a preflight's CPU in the profile).
    @inline(__always)
    private static func equal(_ name: String, _ bytes: UnsafeRawBufferPointer) -> Bool {
        name.utf8.withContiguousStorageIfAvailable { stored in
            guard let base = bytes.baseAddress, let storedBase = stored.baseAddress else { return false }
            for offset in 0..<stored.count where storedBase[offset] != base.load(fromByteOffset: offset, as: UInt8.self)
            {
                return false
            }
            return true
        } ?? false
    }
}
