import NIOCore

/// FNV-1a, 64-bit variant (http://www.isthe.com/chongo/tech/comp/fnv/).
///
///     hash = 0xcbf29ce484222325                  // offset basis
///     for each byte b:
///         hash = hash XOR UInt64(b)
///         hash = hash * 0x00000100000001b3       // FNV prime, wrapping mod 2^64
///
/// Rendered as exactly 16 lowercase hexadecimal digits (zero-padded).
/// The hash of the empty input is `cbf29ce484222325`.
///
/// Python, for tests:
///
///     def fnv1a64(data: bytes) -> str:
///         h = 0xcbf29ce484222325
///         for b in data:
///             h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
///         return "%016x" % h
struct FNV1a64: Sendable {
    static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    static let prime: UInt64 = 0x0000_0100_0000_01b3

    private(set) var value: UInt64 = FNV1a64.offsetBasis

    init() {}

    @inline(__always)
    @_optimize(speed)
    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        var h = self.value
        var i = 0
        let n = bytes.count
        while i < n {
            h = (h ^ UInt64(base[i])) &* FNV1a64.prime
            i &+= 1
        }
        self.value = h
    }

    mutating func update(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { self.update($0) }
    }

    var hex: String { FNV1a64.hex(self.value) }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
