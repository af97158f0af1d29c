import Foundation

/// FNV-1a 64-bit, as the demo upstream computes it (hex, lowercase, 16 digits).
func fnv1a64(_ bytes: some Collection<UInt8>, seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
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
func patternHash(_ count: Int) -> UInt64 {
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

func hex16(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 16 - s.count) + s
}

/// The demo upstream's `/bytes/N` pattern: byte i = i % 251.
func patternBytes(_ count: Int, from start: Int = 0) -> [UInt8] {
    (start..<(start + count)).map { UInt8($0 % 251) }
}

/// A conf in front of `upstream` exercising every row of SPEC 3.
func standardConf(upstream: String, extra: String = "", admin: Bool = false) -> String {
    """
    listen 127.0.0.1:0
    \(admin ? "admin 127.0.0.1:0" : "")
    upstream api \(upstream)
    upstream dead { url http://127.0.0.1:1; connect_timeout 1s; timeout 2s }
    upstream slow { url \(upstream); timeout 500ms }
    max_body_size 1m

    cors {
        allow_origin      https://app.example.com https://*.example.org
        allow_methods     GET HEAD POST PUT DELETE
        allow_headers     Content-Type Authorization X-Custom
        expose_headers    X-Request-Id
        allow_credentials on
        max_age           10m
    }

    route /api/public/ {
        upstream          api
        allow_origin      *
        allow_credentials off
    }
    route /api/ { upstream api }
    route /report/ { upstream api; enforce report; strip_prefix /report }
    route /big/ { upstream api; max_body_size 0; strip_prefix /big }
    route /dead/ { upstream dead }
    route /slow/ { upstream slow; strip_prefix /slow }
    route = /healthz { upstream api; cors off }
    route /raw/ { upstream api; cors off; strip_prefix /raw }
    \(extra)
    """
}
