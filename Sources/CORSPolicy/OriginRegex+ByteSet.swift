/// A set of bytes as a 256-bit bitmap: one regex class, `.`, `\d`…, or a letter under `(?i)`.
/// Matching a byte against it is a shift and a mask, whatever the class looks like.
struct ByteSet: Sendable {
    private var w0: UInt64 = 0
    private var w1: UInt64 = 0
    private var w2: UInt64 = 0
    private var w3: UInt64 = 0

    init() {}

    init<S: Sequence<UInt8>>(_ bytes: S) {
        for byte in bytes { insert(byte) }
    }

    @inline(__always)
    func contains(_ byte: UInt8) -> Bool {
        let bit = UInt64(1) &<< UInt64(byte & 63)
        switch byte >> 6 {
        case 0: return w0 & bit != 0
        case 1: return w1 & bit != 0
        case 2: return w2 & bit != 0
        default: return w3 & bit != 0
        }
    }

    mutating func insert(_ byte: UInt8) {
        let bit = UInt64(1) &<< UInt64(byte & 63)
        switch byte >> 6 {
        case 0: w0 |= bit
        case 1: w1 |= bit
        case 2: w2 |= bit
        default: w3 |= bit
        }
    }

    mutating func insert(_ range: ClosedRange<UInt8>) {
        for byte in range { insert(byte) }
    }

    mutating func formUnion(_ other: ByteSet) {
        w0 |= other.w0
        w1 |= other.w1
        w2 |= other.w2
        w3 |= other.w3
    }

    /// Every byte not in this set, non-ASCII bytes included.
    var inverted: ByteSet {
        var result = ByteSet()
        result.w0 = ~w0
        result.w1 = ~w1
        result.w2 = ~w2
        result.w3 = ~w3
        return result
    }

    /// This set plus the other case of each ASCII letter in it (`(?i)`).
    var caseFolded: ByteSet {
        var result = self
        for lower in UInt8(ascii: "a")...UInt8(ascii: "z") {
            let upper = lower - 0x20
            if contains(lower) || contains(upper) {
                result.insert(lower)
                result.insert(upper)
            }
        }
        return result
    }

    /// `\d`: ASCII digits.
    static let digits = ByteSet(UInt8(ascii: "0")...UInt8(ascii: "9"))
    /// `\w`: ASCII letters, digits and `_`.
    static let word: ByteSet = {
        var set = digits
        set.insert(UInt8(ascii: "a")...UInt8(ascii: "z"))
        set.insert(UInt8(ascii: "A")...UInt8(ascii: "Z"))
        set.insert(UInt8(ascii: "_"))
        return set
    }()
    /// `\s`: space, tab, line feed, vertical tab, form feed, carriage return.
    static let space = ByteSet([0x20, 0x09, 0x0A, 0x0B, 0x0C, 0x0D])
    /// `.`: every byte but a line feed.
    static let anyButNewline = ByteSet([0x0A]).inverted
}
