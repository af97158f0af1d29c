import NIOConcurrencyHelpers
@_spi(CustomByteBufferAllocator) import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where response body buffers come from: a download's chunks reuse retained blocks
/// instead of fresh memory per chunk. A fresh large block costs page faults on the
/// worker's first write (glibc returns freed memory at the top of a heap to the kernel,
/// then faults it in again), about a tenth of a download's CPU.
///
/// ByteBuffer capacities are powers of two. One of 8 KiB up to `largestClass` (one curl
/// read is at most `CurlWorker.receiveBufferSize`) takes a block of its size class;
/// the EventLoop frees it after the write, which puts it back. Each class keeps at most
/// `retainedBytesPerClass` of idle blocks, so the pool holds at most 5 x that; in-flight
/// buffers are bounded per transfer by its receive credit. Everything else is plain
/// `malloc`. Each block has a 16-byte header naming its class (0: malloc).
package enum ReceiveBufferPool {
    static let smallestClassShift = 13
    /// 128 KiB, also `CurlWorker.receiveBufferSize`.
    static let largestClassShift = 17
    package static let retainedBytesPerClass = 2 * 1024 * 1024

    /// The allocator for response body buffers (thread-safe).
    package static let allocator = ByteBufferAllocator(
        allocate: poolAllocate, reallocate: poolReallocate, deallocate: poolDeallocate, copy: poolCopy)

    /// Idle blocks (addresses) per class, smallest first.
    fileprivate static let idle = NIOLockedValueBox<[[UInt]]>(
        Array(repeating: [], count: largestClassShift - smallestClassShift + 1))

    fileprivate static let headerSize = 16

    /// The class tag (1...) of an allocation of `size` bytes; 0 for malloc.
    fileprivate static func tag(forSize size: Int) -> Int {
        guard size > 1 << (smallestClassShift - 1), size <= 1 << largestClassShift else { return 0 }
        let shift = Int.bitWidth - (size - 1).leadingZeroBitCount  // ceil(log2(size))
        return max(shift, smallestClassShift) - smallestClassShift + 1
    }

    fileprivate static func size(ofTag tag: Int) -> Int { 1 << (smallestClassShift + tag - 1) }

    /// Idle blocks now, all classes (tests).
    package static var idleCount: Int { idle.withLockedValue { $0.reduce(0) { $0 + $1.count } } }
}

private func poolAllocate(_ size: Int) -> UnsafeMutableRawPointer? {
    typealias Pool = ReceiveBufferPool
    let tag = Pool.tag(forSize: size)
    let block: UnsafeMutableRawPointer?
    if tag > 0 {
        let reused = Pool.idle.withLockedValue { $0[tag - 1].popLast() }
        block =
            reused.flatMap { UnsafeMutableRawPointer(bitPattern: $0) }
            ?? malloc(Pool.headerSize + Pool.size(ofTag: tag))
    } else {
        block = malloc(Pool.headerSize + max(size, 1))
    }
    guard let block else { return nil }
    block.storeBytes(of: UInt64(tag), as: UInt64.self)
    return block + Pool.headerSize
}

private func poolDeallocate(_ pointer: UnsafeMutableRawPointer) {
    typealias Pool = ReceiveBufferPool
    let block = pointer - Pool.headerSize
    let tag = Int(block.load(as: UInt64.self))
    if tag > 0 {
        let limit = Pool.retainedBytesPerClass / Pool.size(ofTag: tag)
        let kept = Pool.idle.withLockedValue { idle in
            guard idle[tag - 1].count < limit else { return false }
            idle[tag - 1].append(UInt(bitPattern: block))
            return true
        }
        if kept { return }
    }
    free(block)
}

private func poolReallocate(
    _ pointer: UnsafeMutableRawPointer?, _ oldSize: Int, _ newSize: Int
)
    -> UnsafeMutableRawPointer?
{
    typealias Pool = ReceiveBufferPool
    guard let pointer else { return poolAllocate(newSize) }
    let block = pointer - Pool.headerSize
    let tag = Int(block.load(as: UInt64.self))
    if tag > 0 && newSize <= Pool.size(ofTag: tag) { return pointer }
    if tag == 0 && Pool.tag(forSize: newSize) == 0 {
        guard let grown = realloc(block, Pool.headerSize + max(newSize, 1)) else { return nil }
        return grown + Pool.headerSize
    }
    guard let fresh = poolAllocate(newSize) else { return nil }
    fresh.copyMemory(from: pointer, byteCount: min(oldSize, newSize))
    poolDeallocate(pointer)
    return fresh
}

private func poolCopy(_ destination: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, _ count: Int) {
    destination.copyMemory(from: source, byteCount: count)
}
