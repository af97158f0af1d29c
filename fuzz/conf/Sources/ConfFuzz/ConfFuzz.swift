// libFuzzer entry point for the conf parser. Built with
//   swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
// (`-parse-as-library`: no top-level code, so libFuzzer's own `main` drives the binary).
//
// Input layout: the whole input is the conf text (bytes decoded as UTF-8, invalid sequences
// repaired, as `String(contentsOfFile:)` would refuse but the loader must survive anyway).
// A small fixed environment lets `${VAR}` / `${VAR:-default}` paths run both ways.
import CORSPolicy
import ProxyConfig

#if canImport(Glibc)
    import Glibc
#endif

/// `CONF_FUZZ_MODE=slots`: the input is not a whole conf but the value of one directive in a
/// valid conf (chosen by the first byte), so the mutator spends its time inside values:
/// origins, `~REGEX`es, durations, sizes, URLs, listen addresses, quoted strings, `${…}`.
let slotMode = getenv("CONF_FUZZ_MODE").map { String(cString: $0) } == "slots"

let slotTemplates: [String] = [
    "cors { allow_origin @ }\n",
    "cors { allow_origin ~@ }\n",
    "cors { allow_origin \"~@\" }\n",
    "cors { allow_origin https://a.example.com @; allow_credentials on }\n",
    "cors { allow_methods @; allow_headers @; expose_headers @ }\n",
    "cors { max_age @ }\n",
    "max_body_size @\n",
    "drain_timeout @\n",
    "upstream u { url @; connect_timeout @; timeout @ }\nroute /u/ { upstream u }\n",
    "listen @\n",
    "admin @\n",
    "self_origin @\n",
    "route @ { upstream api }\n",
    "route = @ { upstream api; strip_prefix @ }\n",
    "route /x/ { upstream api; @ }\n",
    "upstream v ${@}\nroute /v/ { upstream v }\n",
    "upstream w \"${API_URL:-@}\"\nroute /w/ { upstream w }\n",
]

let environment: [String: String] = [
    "API_URL": "http://127.0.0.1:3000",
    "EMPTY": "",
    "ORIGIN": "https://app.example.com",
    "PORT": "8080",
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    var text = String(decoding: bytes, as: UTF8.self)
    if slotMode {
        guard let selector = bytes.first else { return 0 }
        let value = String(decoding: bytes.dropFirst(), as: UTF8.self)
        let template = slotTemplates[Int(selector) % slotTemplates.count]
        text = "listen 127.0.0.1:0\nupstream api http://127.0.0.1:3000\nroute /api/ { upstream api }\n"
            + template.split(separator: "@", omittingEmptySubsequences: false).joined(separator: value)
    }
    let result = ProxyConfig.load(text: text, path: "fuzz.conf", environment: environment)
    // The contract the loader documents: a configuration exactly when there is no error.
    let errors = result.diagnostics.filter { $0.severity == .error }
    precondition((result.configuration == nil) == !errors.isEmpty, "configuration/error mismatch")
    // Rendering every diagnostic must not trap either (line/column into the text).
    for d in result.diagnostics { _ = d.description }
    if let configuration = result.configuration {
        // The `check` table and route lookups run on every valid conf.
        _ = configuration.checkTable()
        for probe in ["/", "/api/", "/api/x?y", "/healthz", ""] {
            _ = configuration.routes.match(path: probe[...])
        }
        // Compile every route's policy (regexes included) and decide a few requests.
        let facts = [
            RequestFacts(method: "GET", path: "/api/", origins: ["https://app.example.com"]),
            RequestFacts(
                method: "OPTIONS", path: "/api/", origins: ["https://a.b.example.com:8443"], requestMethod: "PUT",
                requestHeaders: ["X-Custom, authorization"], privateNetwork: true, host: "proxy"),
            RequestFacts(method: "POST", path: "/", origins: ["null"]),
        ]
        let defaults = CompiledPolicy(settings: configuration.defaultCORS, routePattern: "-")
        for f in facts { _ = defaults.decideNoRoute(f, selfOrigins: configuration.selfOrigins) }
        for route in configuration.routes.routes.prefix(16) {
            guard let settings = route.cors else { continue }
            let policy = CompiledPolicy(settings: settings, routePattern: route.label)
            for f in facts { _ = policy.decide(f, selfOrigins: configuration.selfOrigins) }
        }
    }
    return 0
}

// SwiftPM links an executable target with `--defsym main=<Target>_main` (so tests can call it),
// which hides libFuzzer's own `main`. Provide that symbol and hand control to libFuzzer's
// driver, which parses the usual libFuzzer flags (-max_total_time, -timeout, corpus dirs, …).
typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: FuzzCallback
) -> Int32

@_cdecl("ConfFuzz_main")
public func confFuzzMain(
    _ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> Int32 {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) }
}
