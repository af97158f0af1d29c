// swift-tools-version:6.0
import PackageDescription

// libFuzzer target for the conf parser (`ProxyConfig.load(text:path:environment:)`).
// ProxyConfig's API is `package` access, which a separate package cannot import, so this
// package compiles the same sources through symlinks (like bench/decision does):
//   Sources/ProxyConfig -> ../../../Sources/ProxyConfig
//   Sources/CORSPolicy  -> ../../../Sources/CORSPolicy
//   Sources/HeaderFields -> ../../../Sources/HeaderFields
// Build and run: scripts/fuzz.sh (or `make fuzz`).
let package = Package(
    name: "conf-fuzz",
    platforms: [.macOS(.v15)],
    targets: [
        .target(name: "HeaderFields"),
        .target(name: "CORSPolicy", dependencies: ["HeaderFields"]),
        .target(name: "ProxyConfig", dependencies: ["CORSPolicy"]),
        .executableTarget(name: "ConfFuzz", dependencies: ["ProxyConfig"]),
    ]
)
