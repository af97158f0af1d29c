/// What this build is: `cors-proxy --version` prints it and `/metrics` exports it as
/// `cors_proxy_build_info{version}`. The one place to change at a release (CHANGELOG.md
/// names the same version).
package enum BuildInfo {
    package static let version = "1.0.0"
}

extension BuildInfo {
    /// `cors_proxy_build_info{version="…"} 1`, the usual `_info` pattern: a gauge that is
    /// always 1, so a query can join on or group by `version` (which build is running where,
    /// during a rollout). Written as text by the admin endpoint rather than through the
    /// metrics registry, which prints every gauge as a float (`1.0`).
    package static let prometheusLines: [UInt8] = Array(
        """
        # TYPE cors_proxy_build_info gauge
        cors_proxy_build_info{version="\(version)"} 1

        """.utf8)
}
