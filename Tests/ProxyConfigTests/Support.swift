import Foundation
import ProxyConfig

/// Loads conf text as `proxy.conf` with the given environment.
func loadConf(_ text: String, env: [String: String] = [:]) -> LoadResult {
    ProxyConfig.load(text: text, path: "proxy.conf", environment: env)
}

/// Every diagnostic of `text`, rendered.
func diagnostics(_ text: String, env: [String: String] = [:]) -> [String] {
    loadConf(text, env: env).diagnostics.map(\.description)
}

/// A minimal valid head so a case can focus on one directive.
let head = "listen 127.0.0.1:0\nupstream api http://127.0.0.1:3000\n"

/// Reads a file under `Tests/Fixtures/`.
func fixture(_ name: String) throws -> String {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent(name)
    return try String(contentsOf: url, encoding: .utf8)
}

/// The reference conf (the README's "The conf file" example, written out in full), verbatim.
let referenceConf = """
    # proxy.conf
    listen 0.0.0.0:8080
    admin  127.0.0.1:9901            # optional: /healthz /readyz /metrics

    upstream api {
        url             ${API_URL:-http://127.0.0.1:3000}
        connect_timeout 2s
        timeout         30s
    }

    cors {                            # defaults every route inherits
        allow_origin      https://app.example.com https://*.example.com
        allow_methods     GET HEAD POST PUT DELETE
        allow_headers     Content-Type Authorization
        expose_headers    X-Request-Id
        allow_credentials on
        max_age           10m
    }

    route /api/public/ {
        upstream          api
        allow_origin      *
        allow_credentials off
    }

    route /api/ {
        upstream api
    }

    route = /healthz {
        upstream api
        cors off
    }

    """
