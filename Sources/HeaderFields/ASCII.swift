/// ASCII case-insensitive comparison, the way HTTP compares header names and tokens:
/// byte by byte, without a lowercased copy (these run for every header of every message).
///
/// One concrete function per byte container rather than one generic over `Collection`: the
/// generic form was not specialised in the calling modules, and its iterator and closure
/// calls through value witnesses cost a preflight about a fifth of its CPU.
package enum ASCII {
    @inlinable @inline(__always)
    package static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    /// `bytes` equals the lowercase ASCII `lower`, ignoring the case of `bytes`.
    @inlinable
    package static func equalsLowercase(_ bytes: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
        let count = lower.utf8CodeUnitCount
        guard bytes.count == count else { return false }
        let literal = lower.utf8Start
        var i = 0
        while i < count {
            if lowercased(bytes[i]) != literal[i] { return false }
            i += 1
        }
        return true
    }

    @inlinable
    package static func equalsLowercase(_ bytes: UnsafeBufferPointer<UInt8>, _ lower: StaticString) -> Bool {
        equalsLowercase(UnsafeRawBufferPointer(bytes), lower)
    }

    @inlinable
    package static func equalsLowercase(_ utf8: String.UTF8View, _ lower: StaticString) -> Bool {
        // The length first: O(1) for native strings, and most names differ in it.
        guard utf8.count == lower.utf8CodeUnitCount else { return false }
        if let equal = utf8.withContiguousStorageIfAvailable({ equalsLowercase($0, lower) }) { return equal }
        return slowEqualsLowercase(utf8, lower)
    }

    @inlinable
    package static func equalsLowercase(_ utf8: Substring.UTF8View, _ lower: StaticString) -> Bool {
        guard utf8.count == lower.utf8CodeUnitCount else { return false }
        if let equal = utf8.withContiguousStorageIfAvailable({ equalsLowercase($0, lower) }) { return equal }
        return slowEqualsLowercase(utf8, lower)
    }

    /// `a` and `b` are equal ignoring ASCII case.
    @inlinable
    package static func equalsIgnoringCase(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        var i = 0
        while i < a.count {
            if lowercased(a[i]) != lowercased(b[i]) { return false }
            i += 1
        }
        return true
    }

    @inlinable
    package static func equalsIgnoringCase(_ a: UnsafeBufferPointer<UInt8>, _ b: String.UTF8View) -> Bool {
        guard a.count == b.count else { return false }
        if let equal = b.withContiguousStorageIfAvailable({ equalsIgnoringCase(a, $0) }) { return equal }
        var i = 0
        for byte in b {
            if lowercased(a[i]) != lowercased(byte) { return false }
            i += 1
        }
        return true
    }

    /// For strings without contiguous UTF-8 (bridged): rare.
    @usableFromInline
    static func slowEqualsLowercase<Bytes: Sequence<UInt8>>(_ bytes: Bytes, _ lower: StaticString) -> Bool {
        var i = 0
        let literal = lower.utf8Start
        for byte in bytes {
            if lowercased(byte) != literal[i] { return false }
            i += 1
        }
        return true
    }
}
