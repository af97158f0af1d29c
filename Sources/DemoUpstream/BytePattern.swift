import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// The deterministic body served by `/bytes/N`: byte `i` (0-based) is `UInt8(i % 251)`.
/// 251 is prime, so the pattern does not line up with any power-of-two chunking.
enum BytePattern {
    static let period = 251
    static let chunkSize = 64 * 1024

    /// `chunkSize + period` bytes of the pattern. Any chunk of the stream starting at offset `o`
    /// is a slice of this buffer starting at `o % 251` — no copy, no per-request allocation.
    static let source: ByteBuffer = {
        var buffer = ByteBufferAllocator().buffer(capacity: chunkSize + period)
        for i in 0..<(chunkSize + period) {
            buffer.writeInteger(UInt8(i % period))
        }
        return buffer
    }()

    /// `length` (at most `chunkSize`) pattern bytes as they appear at stream offset `offset`.
    static func slice(offset: UInt64, length: Int) -> ByteBuffer {
        precondition(length <= chunkSize)
        return source.getSlice(at: Int(offset % UInt64(period)), length: length)!
    }

    /// FNV-1a 64 of the first `count` bytes of the pattern.
    @_optimize(speed)
    static func fnv1a64(count: UInt64) -> UInt64 {
        var hasher = FNV1a64()
        source.withUnsafeReadableBytes { raw in
            let period = UnsafeRawBufferPointer(rebasing: raw[0..<BytePattern.period])
            let block = UnsafeRawBufferPointer(rebasing: raw[0..<(BytePattern.period * 64)])
            var left = count
            while left >= UInt64(block.count) {
                hasher.update(block)
                left -= UInt64(block.count)
            }
            while left >= UInt64(period.count) {
                hasher.update(period)
                left -= UInt64(period.count)
            }
            hasher.update(UnsafeRawBufferPointer(rebasing: raw[0..<Int(left)]))
        }
        return hasher.value
    }

    private static let cache = NIOLockedValueBox<[UInt64: UInt64]>([:])

    static func cachedFNV1a64(count: UInt64) -> UInt64? {
        cache.withLockedValue { $0[count] }
    }

    static func computeAndCacheFNV1a64(count: UInt64) -> UInt64 {
        if let hit = cachedFNV1a64(count: count) { return hit }
        let value = fnv1a64(count: count)
        cache.withLockedValue { table in
            if table.count > 1024 { table.removeAll() }
            table[count] = value
        }
        return value
    }
}
