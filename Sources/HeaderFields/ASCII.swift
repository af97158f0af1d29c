/// ASCII case-insensitive comparison, the way HTTP compares header names and tokens:
/// byte by byte, without a lowercased copy (these run for every header of every message).
package enum ASCII {
    @inlinable @inline(__always)
    package static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    /// `bytes` equals the lowercase ASCII `lower`, ignoring the case of `bytes`.
    @inlinable
    package static func equalsLowercase<Bytes: Collection<UInt8>>(_ bytes: Bytes, _ lower: StaticString) -> Bool {
        guard bytes.count == lower.utf8CodeUnitCount else { return false }
        let literal = UnsafeBufferPointer(start: lower.utf8Start, count: lower.utf8CodeUnitCount)
        return bytes.elementsEqual(literal) { lowercased($0) == $1 }
    }

    /// `a` and `b` are equal ignoring ASCII case.
    @inlinable
    package static func equalsIgnoringCase<A: Collection<UInt8>, B: Collection<UInt8>>(_ a: A, _ b: B) -> Bool {
        guard a.count == b.count else { return false }
        return a.elementsEqual(b) { lowercased($0) == lowercased($1) }
    }

    /// `bytes` starts with the lowercase ASCII `lower`, ignoring the case of `bytes`.
    @inlinable
    package static func hasLowercasePrefix<Bytes: Collection<UInt8>>(_ bytes: Bytes, _ lower: StaticString) -> Bool {
        guard bytes.count >= lower.utf8CodeUnitCount else { return false }
        return equalsLowercase(bytes.prefix(lower.utf8CodeUnitCount), lower)
    }
}
