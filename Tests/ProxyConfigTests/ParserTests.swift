import CORSPolicy
import Testing

@testable import ProxyConfig

@Suite struct ReferenceConfTests {
    @Test func loadsWithDefaultURL() throws {
        let result = loadConf(referenceConf)
        // The example's public route allows every origin and tunnels WebSocket (the default).
        #expect(
            result.diagnostics.map(\.description) == [
                "proxy.conf:22:23: warning: '*' in allow_origin lets every site open a WebSocket here that carries the user's cookies (browsers apply no CORS to WebSocket, so the origin check is the only guard); list the origins, or write websocket off"
            ])
        let config = try #require(result.configuration)
        #expect(config.listen == [ListenAddress(host: "0.0.0.0", port: 8080)])
        #expect(config.admin == ListenAddress(host: "127.0.0.1", port: 9901))
        let api = try #require(config.upstreams["api"])
        #expect(api.scheme == .http)
        #expect(api.host == "127.0.0.1")
        #expect(api.port == 3000)
        #expect(api.basePath == "")
        #expect(api.connectTimeoutMilliseconds == 2000)
        #expect(api.timeoutMilliseconds == 30_000)
        #expect(config.maxBodySize == 100 * 1024 * 1024)
        #expect(config.drainTimeoutMilliseconds == 10_000)
        #expect(config.defaultCORS.allowCredentials)
        #expect(config.defaultCORS.maxAgeMilliseconds == 600_000)
        #expect(config.routes.matchOrder.map(\.label) == ["= /healthz", "/api/public/", "/api/"])

        let healthz = try #require(config.routes.match(path: "/healthz"))
        #expect(healthz.cors == nil)
        let publicRoute = try #require(config.routes.match(path: "/api/public/x"))
        #expect(publicRoute.cors?.allowOrigin == [.any])
        #expect(publicRoute.cors?.allowCredentials == false)
        // Inherited from cors {}.
        #expect(publicRoute.cors?.allowMethods == .list(["GET", "HEAD", "POST", "PUT", "DELETE"]))
        #expect(publicRoute.cors?.maxAgeMilliseconds == 600_000)
        let apiRoute = try #require(config.routes.match(path: "/api/users"))
        #expect(apiRoute.cors == config.defaultCORS)
        #expect(apiRoute.upstream == api)
    }

    @Test func loadsWithURLFromEnvironment() throws {
        let result = loadConf(referenceConf, env: ["API_URL": "https://backend.internal:8443/v1/"])
        #expect(result.errors.isEmpty)
        let api = try #require(result.configuration?.upstreams["api"])
        #expect(api.scheme == .https)
        #expect(api.host == "backend.internal")
        #expect(api.port == 8443)
        #expect(api.basePath == "/v1")
        #expect(api.urlPrefix == "https://backend.internal:8443/v1")
    }
}
