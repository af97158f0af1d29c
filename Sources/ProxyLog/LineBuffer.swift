/// A growable byte buffer that log lines are rendered into: raw memory, no copy-on-write
/// checks per byte, reused from line to line (and tick to tick), so rendering a line
/// allocates nothing once the buffer has grown to its working size.
///
/// Not thread-safe: one thread owns it at a time. A full buffer is handed to the writer
/// thread whole (and handed back empty), hence `@unchecked Sendable`.
package final class LineBuffer: @unchecked Sendable {
    package private(set) var base: UnsafeMutablePointer<UInt8>
    package private(set) var count = 0
    package private(set) var capacity: Int

    package init(capacity: Int = 1024) {
        self.capacity = max(capacity, 64)
        self.base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    package var isEmpty: Bool { count == 0 }

    /// Forgets the contents, keeps the memory.
    package func removeAll() { count = 0 }

    /// Drops the bytes from `newCount` on (used to undo a partly rendered line).
    package func truncate(to newCount: Int) {
        precondition(newCount >= 0 && newCount <= count, "truncate beyond the buffer")
        count = newCount
    }

    /// Frees the memory beyond `limit` bytes after a burst (a buffer that once held
    /// megabytes should not keep them while idle).
    package func shrink(toAtMost limit: Int) {
        guard capacity > limit, count <= limit else { return }
        let smaller = UnsafeMutablePointer<UInt8>.allocate(capacity: limit)
        smaller.update(from: base, count: count)
        base.deallocate()
        base = smaller
        capacity = limit
    }

    @inline(__always)
    package func reserve(_ extra: Int) {
        if count &+ extra > capacity { grow(to: count + extra) }
    }

    private func grow(to needed: Int) {
        var newCapacity = capacity
        while newCapacity < needed { newCapacity *= 2 }
        let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        bigger.update(from: base, count: count)
        base.deallocate()
        base = bigger
        capacity = newCapacity
    }

    @inline(__always)
    package func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count &+= 1
    }

    @inline(__always)
    package func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        let length = bytes.count
        reserve(length)
        let target = base + count
        // Most fields are a few bytes: two overlapping word copies beat a call to memmove
        // (which a byte loop would be turned back into).
        if length <= 32 {
            let from = UnsafeRawPointer(source)
            let to = UnsafeMutableRawPointer(target)
            if length >= 16 {
                let head = from.loadUnaligned(as: SIMD16<UInt8>.self)
                let tail = from.loadUnaligned(fromByteOffset: length - 16, as: SIMD16<UInt8>.self)
                to.storeBytes(of: head, as: SIMD16<UInt8>.self)
                to.storeBytes(of: tail, toByteOffset: length - 16, as: SIMD16<UInt8>.self)
            } else if length >= 8 {
                let head = from.loadUnaligned(as: UInt64.self)
                let tail = from.loadUnaligned(fromByteOffset: length - 8, as: UInt64.self)
                to.storeBytes(of: head, as: UInt64.self)
                to.storeBytes(of: tail, toByteOffset: length - 8, as: UInt64.self)
            } else if length >= 4 {
                let head = from.loadUnaligned(as: UInt32.self)
                let tail = from.loadUnaligned(fromByteOffset: length - 4, as: UInt32.self)
                to.storeBytes(of: head, as: UInt32.self)
                to.storeBytes(of: tail, toByteOffset: length - 4, as: UInt32.self)
            } else {
                target[0] = source[0]
                target[length - 1] = source[length - 1]
                target[length >> 1] = source[length >> 1]
            }
        } else {
            target.update(from: source, count: length)
        }
        count &+= length
    }

    @inline(__always)
    package func append(_ text: StaticString) {
        text.withUTF8Buffer { append($0) }
    }

    /// The string's UTF-8 bytes as they are (no escaping: for text the caller knows is safe).
    package func appendRaw(_ text: String) {
        var text = text
        text.withUTF8 { append($0) }
    }

    /// The bytes so far.
    package func withUnsafeBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: base, count: count))
    }

    /// The bytes so far, decoded (tests and the suggest tool).
    package var text: String { withUnsafeBytes { String(decoding: $0, as: UTF8.self) } }

    // MARK: - Numbers

    /// A non-negative decimal integer (negative values are written with a `-`).
    package func appendDecimal(_ value: Int64) {
        if value < 0 {
            append(UInt8(ascii: "-"))
            appendDecimal(UInt64(value.magnitude))
        } else {
            appendDecimal(UInt64(value))
        }
    }

    package func appendDecimal(_ value: UInt64) {
        reserve(20)
        var digits = 1
        var probe = value
        while probe >= 10 {
            probe /= 10
            digits += 1
        }
        var rest = value
        var index = count + digits - 1
        repeat {
            base[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
            index -= 1
        } while rest > 0
        count &+= digits
    }

    /// Nanoseconds as milliseconds with exactly three decimals (`0.412`), rounded to the
    /// nearest microsecond: a JSON number and a logfmt value alike.
    package func appendMilliseconds(nanoseconds: Int64) {
        let micros = (max(0, nanoseconds) + 500) / 1000
        appendDecimal(micros / 1000)
        append(UInt8(ascii: "."))
        let fraction = Int(micros % 1000)
        reserve(3)
        base[count] = UInt8(ascii: "0") &+ UInt8(fraction / 100)
        base[count + 1] = UInt8(ascii: "0") &+ UInt8(fraction / 10 % 10)
        base[count + 2] = UInt8(ascii: "0") &+ UInt8(fraction % 10)
        count &+= 3
    }

    /// Two digits, zero-padded (timestamps).
    @inline(__always)
    package func appendTwoDigits(_ value: Int) {
        reserve(2)
        base[count] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value / 10)
        base[count + 1] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value % 10)
        count &+= 2
    }
}
