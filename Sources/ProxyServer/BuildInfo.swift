/// What this build is: `cors-proxy --version` prints it and `/metrics` exports it as
/// `cors_proxy_build_info{version}`. The one place to change at a release (CHANGELOG.md
/// names the same version).
package enum BuildInfo {
    package static let version = "1.0.0"
}
