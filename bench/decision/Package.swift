// swift-tools-version:6.1
import PackageDescription

// The decision micro-benchmark. CORSPolicy's API is `package` access, which a
// separate package cannot import, so this package compiles the same sources
// through a symlink (Sources/CORSPolicy -> ../../../Sources/CORSPolicy).
let package = Package(
    name: "decision-bench",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .target(name: "HeaderFields"),
        .target(name: "CORSPolicy", dependencies: ["HeaderFields"]),
        .executableTarget(name: "DecisionProfile", dependencies: ["CORSPolicy"]),
        .executableTarget(
            name: "DecisionBenchmark",
            dependencies: [
                "CORSPolicy",
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/DecisionBenchmark",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
