import Foundation

/// FNV-1a 64-bit, as the demo upstream computes it (hex, lowercase, 16 digits).
package func fnv1a64(_ bytes: some Collection<UInt8>, seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
    var hash = seed
    // Through a raw pointer: the tests hash 64 MiB bodies in debug builds.
    let done: Void? = bytes.withContiguousStorageIfAvailable { buffer in
        guard let base = buffer.baseAddress else { return }
        for i in 0..<buffer.count {
            hash = (hash ^ UInt64(base[i])) &* 0x100_0000_01b3
        }
    }
    if done == nil {
        for b in bytes { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
    }
    return hash
}

/// FNV-1a of the first `count` bytes of the demo pattern, without materialising them.
package func patternHash(_ count: Int) -> UInt64 {
    let period = patternBytes(251 * 4096)
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    var remaining = count
    while remaining > 0 {
        let n = min(remaining, period.count)
        hash = fnv1a64(period[0..<n], seed: hash)
        remaining -= n
    }
    return hash
}

package func hex16(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 16 - s.count) + s
}

/// The demo upstream's `/bytes/N` pattern: byte i = i % 251.
package func patternBytes(_ count: Int, from start: Int = 0) -> [UInt8] {
    (start..<(start + count)).map { UInt8($0 % 251) }
}
