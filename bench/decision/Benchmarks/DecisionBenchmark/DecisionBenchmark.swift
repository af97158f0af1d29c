import Benchmark
import CORSPolicy

/// 200 allow_origin entries: 195 exact, 4 wildcards, 1 regex; credentials on,
/// listed headers and a max_age, so every static header is exercised.
func makePolicy() -> CompiledPolicy {
    var texts: [String] = (0..<195).map { "https://app\($0).customer\($0 % 17).example.org" }
    texts += ["https://*.example.com", "https://*.staging.example.net", "http://*.dev.example.io:8080",
              "https://*.partner.example.co"]
    texts.append("~https://pr-[0-9]+\\.preview\\.example\\.dev")
    var settings = CORSSettings()
    settings.allowOrigin = texts.compactMap { try? OriginEntry.parse($0).get() }
    settings.allowMethods = .list(["GET", "HEAD", "POST", "PUT", "DELETE"])
    settings.allowHeaders = .list(["Content-Type", "Authorization", "X-Requested-With"])
    settings.exposeHeaders = .list(["X-Request-Id"])
    settings.allowCredentials = true
    settings.maxAgeMilliseconds = 600_000
    precondition(settings.allowOrigin.count == 200)
    return CompiledPolicy(settings: settings, routePattern: "/api/")
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(3)
    )
    let policy = makePolicy()
    let selfOrigins: Set<String> = ["https://proxy.example.org"]

    let preflight = RequestFacts(
        method: "OPTIONS", path: "/api/orders", origins: ["https://app150.customer14.example.org"],
        requestMethod: "PUT", requestHeaders: ["content-type,authorization"], host: "proxy.example.org",
        scheme: .https)
    let actual = RequestFacts(
        method: "POST", path: "/api/orders", origins: ["https://app150.customer14.example.org"],
        host: "proxy.example.org", scheme: .https)
    let wildcardActual = RequestFacts(
        method: "GET", path: "/api/orders", origins: ["https://shop.eu.example.com"],
        host: "proxy.example.org", scheme: .https)
    precondition(policy.decide(preflight, selfOrigins: selfOrigins).summary == .allowed)
    precondition(policy.decide(actual, selfOrigins: selfOrigins).summary == .allowed)
    precondition(policy.decide(wildcardActual, selfOrigins: selfOrigins).summary == .allowed)

    Benchmark("allowed preflight (exact origin of 200)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(policy.decide(preflight, selfOrigins: selfOrigins))
        }
    }
    Benchmark("allowed actual (exact origin of 200)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(policy.decide(actual, selfOrigins: selfOrigins))
        }
    }
    Benchmark("allowed actual (wildcard origin)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(policy.decide(wildcardActual, selfOrigins: selfOrigins))
        }
    }
}
