import HeaderFields
import Testing

@testable import CORSPolicy

/// A small deterministic generator (SplitMix64), so a failure reproduces.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random hosts plus near misses of the allowed ones: other schemes, ports,
/// suffix tricks, case, trailing dots and slashes, userinfo, whitespace.
func generatedOrigins(count: Int, seed: UInt64) -> [String] {
    var rng = SplitMix(state: seed)
    let labels = [
        "app", "example", "evil", "com", "net", "a", "b-c", "xn--bcher-kva", "1", "255", "EXAMPLE", "App", "",
    ]
    let schemes = ["https", "http", "HTTPS", "wss", "chrome-extension", "ftp", "", "https:"]
    let ports = ["", ":443", ":80", ":8443", ":0443", ":", ":65536", ":1"]
    let tails = ["", "", "", "/", ".", "?x", "#y", " ", ",https://app.example.com", "\t", "%2e"]
    let near = [
        "https://app.example.com", "https://example.com", "https://evilexample.com", "https://example.com.evil.com",
        "https://app.example.com.evil.com", "https://a.example.com", "http://a.example.com", "null", "NULL",
        "https://app.example.com@evil.com", "https://evil.com#.example.com", "https://evil.com?.example.com",
        "https://pr-1.preview.example.com", "https://pr-x.preview.example.com", "https://pr-1.previewXexample.com",
        "https://[::1]", "http://127.0.0.1:3000", "http://[::1]:3000",
    ]
    var out: [String] = []
    for _ in 0..<count {
        if Bool.random(using: &rng) {
            var text = near.randomElement(using: &rng) ?? ""
            if Int.random(in: 0..<3, using: &rng) == 0 { text += ports.randomElement(using: &rng) ?? "" }
            if Int.random(in: 0..<3, using: &rng) == 0 { text += tails.randomElement(using: &rng) ?? "" }
            out.append(text)
        } else {
            let n = Int.random(in: 1...4, using: &rng)
            let host = (0..<n).map { _ in labels.randomElement(using: &rng) ?? "" }.joined(separator: ".")
            out.append(
                (schemes.randomElement(using: &rng) ?? "") + "://" + host + (ports.randomElement(using: &rng) ?? "")
                    + (tails.randomElement(using: &rng) ?? ""))
        }
    }
    return out
}

/// An independent, slow oracle for the allow list used below.
func oracleAllows(_ text: String) -> Bool {
    guard let origin = Origin.parse(text) else { return false }
    let s = origin.serialized
    if s == "https://app.example.com" || s == "http://127.0.0.1:3000" { return true }
    if origin.scheme == "https", origin.port == nil, origin.host.hasSuffix(".example.com") { return true }
    // ~^https://pr-[0-9]+\.preview\.example\.com$
    if s.hasPrefix("https://pr-"), s.hasSuffix(".preview.example.com") {
        let middle = s.dropFirst("https://pr-".count).dropLast(".preview.example.com".count)
        return !middle.isEmpty && middle.allSatisfy { $0.isASCII && $0.isNumber }
    }
    return false
}

@Test(arguments: [UInt64(1), 2, 3, 42])
func disallowedOriginsNeverReachACAO(_ seed: UInt64) {
    var settings = CORSSettings()
    settings.allowOrigin = entries(
        "https://app.example.com", "https://*.example.com", "http://127.0.0.1:3000",
        "~https://pr-[0-9]+\\.preview\\.example\\.com")
    settings.allowHeaders = .list(["Content-Type"])
    settings.allowCredentials = true
    let policy = CompiledPolicy(settings: settings, routePattern: "/api/")

    for origin in generatedOrigins(count: 2000, seed: seed) {
        let trimmed = String(trimmedOWS(Substring(origin)))
        let expectAllowed =
            !trimmed.isEmpty && !trimmed.contains(",") && !trimmed.contains(" ") && !trimmed.contains("\t")
            && oracleAllows(trimmed)
        for facts in [actual("GET", [origin]), preflight(origin, headers: ["content-type"])] {
            let decision = policy.decide(facts, selfOrigins: [])
            let headers: [HeaderField]
            switch decision {
            case .preflight(_, let h), .deny(_, let h, _): headers = h
            case .forward(let h, _, _, _): headers = h
            case .passThrough: headers = []
            }
            let acao = headers.filter { $0.name.lowercased() == "access-control-allow-origin" }
            #expect(acao.count <= 1, "\(origin): \(acao)")
            if expectAllowed || trimmed.isEmpty {
                #expect(decision.summary.isAllowed, "\(origin) should be allowed: \(decision)")
            } else {
                #expect(acao.isEmpty, "\(origin) is not allowed but got \(acao)")
                #expect(!decision.summary.isAllowed, "\(origin): \(decision)")
            }
            if let value = acao.first?.value {
                #expect(value == trimmed, "ACAO is the origin as sent")
                #expect(oracleAllows(value))
            }
        }
    }
}

/// One compiled policy (regex included) is shared by every event loop: deciding
/// from many tasks at once must give the same answers.
@Test func concurrentDecisionsAgree() async {
    var settings = CORSSettings()
    settings.allowOrigin = entries("https://*.example.com", "~https://pr-[0-9]+\\.preview\\.example\\.dev")
    let policy = CompiledPolicy(settings: settings, routePattern: "/")
    let origins = ["https://pr-7.preview.example.dev", "https://pr-x.preview.example.dev", "https://a.example.com"]
    let expected = origins.map { policy.decide(actual("GET", [$0]), selfOrigins: []) }
    let agreed = await withTaskGroup(of: Bool.self) { group in
        for _ in 0..<8 {
            group.addTask {
                for _ in 0..<500 {
                    for (origin, want) in zip(origins, expected)
                    where policy.decide(actual("GET", [origin]), selfOrigins: []) != want {
                        return false
                    }
                }
                return true
            }
        }
        return await group.allSatisfy { $0 }
    }
    #expect(agreed)
    #expect(expected.map(\.summary) == [.allowed, .denied(.originNotAllowed), .allowed])
}
