// A plain loop over the same decisions as the benchmark, for `perf record`:
// swift build -c release --product DecisionProfile && perf record -g .build/release/DecisionProfile
import CORSPolicy

var texts: [String] = (0..<195).map { "https://app\($0).customer\($0 % 17).example.org" }
texts += ["https://*.example.com", "https://*.staging.example.net", "http://*.dev.example.io:8080",
          "https://*.partner.example.co", "~https://pr-[0-9]+\\.preview\\.example\\.dev"]
var settings = CORSSettings()
settings.allowOrigin = texts.compactMap { try? OriginEntry.parse($0).get() }
settings.allowMethods = .list(["GET", "HEAD", "POST", "PUT", "DELETE"])
settings.allowHeaders = .list(["Content-Type", "Authorization", "X-Requested-With"])
settings.exposeHeaders = .list(["X-Request-Id"])
settings.allowCredentials = true
settings.maxAgeMilliseconds = 600_000
let policy = CompiledPolicy(settings: settings, routePattern: "/api/")
let selfOrigins: Set<String> = ["https://proxy.example.org"]
let which = CommandLine.arguments.dropFirst().first ?? "preflight"
let facts = which == "preflight"
    ? RequestFacts(
        method: "OPTIONS", path: "/api/orders", origins: ["https://app150.customer14.example.org"],
        requestMethod: "PUT", requestHeaders: ["content-type,authorization"], host: "proxy.example.org",
        scheme: .https)
    : RequestFacts(
        method: "POST", path: "/api/orders", origins: ["https://app150.customer14.example.org"],
        host: "proxy.example.org", scheme: .https)
let clock = ContinuousClock()
let n = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2]) ?? 3_000_000 : 3_000_000
var allowed = 0
let elapsed = clock.measure {
    for _ in 0..<n where policy.decide(facts, selfOrigins: selfOrigins).summary == .allowed { allowed += 1 }
}
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
print("\(which): \(allowed)/\(n) allowed, \(Int(Double(n) / seconds)) decisions/s")
