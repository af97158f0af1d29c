import CORSPolicy
import Testing

@testable import ProxyConfig

@Suite struct FixtureTests {
    @Test func validFullLoadsWithoutDiagnostics() throws {
        let result = ProxyConfig.load(text: try fixture("valid-full.conf"), path: "valid-full.conf", environment: [:])
        #expect(result.diagnostics.map(\.description) == [])
        let config = try #require(result.configuration)
        #expect(config.listen.map(\.description) == ["0.0.0.0:8080", "[::]:8080", "0.0.0.0:8443"])
        #expect(config.listen.map(\.tls) == [false, false, true])
        #expect(config.tls?.key.path == "/etc/cors-proxy/tls/privkey.pem")
        #expect(config.upstreams["legacy"]?.tls?.clientIdentity?.key.path == "client.key")
        #expect(config.selfOrigins == ["https://proxy.example.com", "https://proxy.example.com:8443"])
        #expect(config.defaultCORS.allowOrigin.count == 3)
        #expect(config.upstreams["legacy"]?.basePath == "/v2")
        let legacy = try #require(config.routes.match(path: "/legacy/a"))
        #expect(legacy.forwardPath(path: "/legacy/a") == "/v2/a")
        #expect(legacy.preserveHost)
        #expect(legacy.cors?.preflightStatus == 200)
        #expect(legacy.cors?.enforce == .off)
        #expect(legacy.cors?.allowMethods == config.defaultCORS.allowMethods)
        #expect(config.routes.match(path: "/static/x")?.cors?.allowMethods == .list(["GET", "HEAD"]))
        #expect(config.routes.match(path: "/api/public/x")?.cors?.allowHeaders == .any)
        #expect(config.routes.match(path: "/api/x")?.maxBodySize == 1 << 30)
        #expect(config.routes.match(path: "/api")?.cors?.enforce == .report)
        #expect(config.logFormat == .json)
    }

    @Test func checkTableGolden() throws {
        let result = ProxyConfig.load(text: try fixture("valid-full.conf"), path: "valid-full.conf", environment: [:])
        let config = try #require(result.configuration)
        #expect(config.checkTable() == (try fixture("valid-full.check.txt")))
    }

    @Test func checkTableOfTheReferenceConf() throws {
        let config = try #require(loadConf(referenceConf).configuration)
        let expected = """
            listen         0.0.0.0:8080
            admin          127.0.0.1:9901
            self_origin    (none)
            max_body_size  100m
            drain_timeout  10s
            log_format     text

            upstream api  http://127.0.0.1:3000  connect_timeout 2s  timeout 30s

            cors { }  (defaults; also used for the no-route 404)
              allow_origin           https://app.example.com https://*.example.com
              allow_methods          GET HEAD POST PUT DELETE
              allow_headers          Content-Type Authorization
              expose_headers         X-Request-Id
              allow_credentials      on
              max_age                10m
              allow_private_network  off
              enforce                on
              preflight_status       204
              websocket              on

            route = /healthz  (line 30)
              upstream               api  http://127.0.0.1:3000
              strip_prefix           (none)
              preserve_host          off
              max_body_size          100m
              cors                   off (pass-through)

            route /api/public/  (line 20)
              upstream               api  http://127.0.0.1:3000
              strip_prefix           (none)
              preserve_host          off
              max_body_size          100m
              allow_origin           *
              allow_methods          GET HEAD POST PUT DELETE
              allow_headers          Content-Type Authorization
              expose_headers         X-Request-Id
              allow_credentials      off
              max_age                10m
              allow_private_network  off
              enforce                on
              preflight_status       204
              websocket              on

            route /api/  (line 26)
              upstream               api  http://127.0.0.1:3000
              strip_prefix           (none)
              preserve_host          off
              max_body_size          100m
              allow_origin           https://app.example.com https://*.example.com
              allow_methods          GET HEAD POST PUT DELETE
              allow_headers          Content-Type Authorization
              expose_headers         X-Request-Id
              allow_credentials      on
              max_age                10m
              allow_private_network  off
              enforce                on
              preflight_status       204
              websocket              on

            """
        #expect(config.checkTable() == expected)
    }
}
