// swift-tools-version:6.0
import PackageDescription

// Old vs new `allow_origin ~REGEX` engine, timed in release mode. CORSPolicy's API is
// `package` access, which another package cannot import, so this package compiles the same
// sources through a symlink (Sources/CORSPolicy -> ../../../Sources/CORSPolicy), like
// bench/decision and fuzz/conf. No dependencies.
//   swift run -c release RegexBench
let package = Package(
    name: "regex-bench",
    platforms: [.macOS(.v15)],
    targets: [
        .target(name: "HeaderFields"),
        .target(name: "CORSPolicy", dependencies: ["HeaderFields"]),
        .executableTarget(name: "RegexBench", dependencies: ["CORSPolicy"]),
    ]
)
