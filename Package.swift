// swift-tools-version:6.0
import PackageDescription

// Release builds of our own targets skip the runtime exclusivity checks: on the request
// path they cost ~4% of the CPU of a preflight (swift_beginAccess, a TLS lookup and an
// access-set insert per class-property mutation). Debug builds, which `swift test` and the
// sanitizer runs use, keep them, so a violation still fails the tests.
let hotPathSettings: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))
]

let package = Package(
    name: "cors-proxy",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "cors-proxy", targets: ["CORSProxyCLI"]),
        .executable(name: "demo-upstream", targets: ["DemoUpstream"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // The C library's macros Swift cannot call (CPU_COUNT).
        .target(name: "CProcessInfo"),
        // Pure core: stdlib only, no I/O.
        .target(name: "HeaderFields", swiftSettings: hotPathSettings),
        .target(name: "CORSPolicy", dependencies: ["HeaderFields"], swiftSettings: hotPathSettings),
        .target(name: "ProxyConfig", dependencies: ["CORSPolicy"]),
        // The TLS files a conf names: read, parsed and checked (NIOSSL), and the listeners'
        // TLS context built from them. File I/O, so not in ProxyConfig.
        .target(
            name: "ProxyTLS",
            dependencies: [
                "ProxyConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The log: access lines and library messages rendered straight into bytes, written
        // by one thread (docs/DESIGN.md, "Logging").
        .target(
            name: "ProxyLog",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: hotPathSettings
        ),
        // `cors-proxy suggest`: the proxy's denial lines in, conf lines out. Pure.
        .target(name: "PolicySuggestion", dependencies: ["CORSPolicy", "ProxyConfig", "ProxyLog"]),
        // libcurl, through a C shim (curl_easy_setopt is variadic).
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // The upstream seam: what the server asks of an upstream client, and what it hears
        // back. NIOCore only, so the server and its tests never link libcurl.
        .target(
            name: "Upstream",
            dependencies: ["HeaderFields", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: hotPathSettings
        ),
        .target(
            name: "CurlBridge",
            dependencies: [
                "CCurl", "Upstream", "HeaderFields",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: hotPathSettings
        ),
        .target(
            name: "ProxyServer",
            dependencies: [
                "HeaderFields", "CORSPolicy", "ProxyConfig", "ProxyLog", "ProxyTLS", "Upstream",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: hotPathSettings
        ),
        .executableTarget(
            name: "CORSProxyCLI",
            dependencies: [
                "HeaderFields", "CORSPolicy", "ProxyConfig", "ProxyLog", "PolicySuggestion", "ProxyServer", "Upstream",
                "CurlBridge", "CProcessInfo", "ProxyTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The demo upstream's WebSocket endpoints, also run in-process by the curl bridge's tests.
        .target(
            name: "DemoWebSocket",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "DemoUpstream",
            dependencies: [
                "DemoWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "CORSPolicyTests", dependencies: ["CORSPolicy", "HeaderFields"]),
        .testTarget(name: "ProxyConfigTests", dependencies: ["ProxyConfig", "CORSPolicy"]),
        .testTarget(
            name: "ProxyTLSTests",
            dependencies: [
                "ProxyTLS", "ProxyConfig", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(
            name: "PolicySuggestionTests",
            dependencies: ["PolicySuggestion", "ProxyConfig", "CORSPolicy", "ProxyLog", "TestSupport"]),
        .testTarget(
            name: "ProxyLogTests",
            dependencies: [
                "ProxyLog",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "CurlBridgeTests",
            dependencies: [
                "CurlBridge", "Upstream", "HeaderFields", "TestSupport", "DemoWebSocket",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "ProxyServerTests",
            dependencies: [
                "ProxyServer", "CORSPolicy", "ProxyConfig", "ProxyLog", "Upstream", "HeaderFields", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ]
        ),
        // What the process-level test targets share: child processes, a raw HTTP/1.1 client,
        // the demo upstream's byte pattern and hash.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        // Runs the built `cors-proxy` and `demo-upstream` executables as processes.
        // ProxyLog: the proxy's log lines are read back with the parser `suggest` uses.
        // Scripts/h2raw.py: a raw HTTP/2-over-TLS client the TLS tests run with python3.
        // NIOSSL: a TLS client for `wss://` through a TLS listener.
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "TestSupport", "ProxyLog",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            exclude: ["Scripts"]
        ),
        // Headless Chromium against the built `cors-proxy` and `demo-upstream` (run as processes,
        // like IntegrationTests). The test pages are read from the source tree (#filePath).
        .testTarget(name: "BrowserTests", dependencies: ["TestSupport"], exclude: ["Pages"]),
    ]
)
