// swift-tools-version:6.0
import PackageDescription

// The log-line micro-benchmark: ns per access line, text vs JSON, against the swift-log
// StreamLogHandler line it replaced. ProxyLog's API is `package` access, which another
// package cannot import, so this package compiles the same sources through a symlink
// (Sources/ProxyLog -> ../../../Sources/ProxyLog), like bench/regex and bench/decision.
//   swift run -c release LogBench 2>/dev/null
let package = Package(
    name: "log-bench",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .target(
            name: "ProxyLog",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            // As in the main package's release builds.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
        ),
        .executableTarget(
            name: "LogBench",
            dependencies: [
                "ProxyLog",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ]
)
