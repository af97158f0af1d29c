import Testing

@testable import ProxyConfig

@Suite struct RouteTableTests {
    static let conf = """
        listen 127.0.0.1:0
        upstream api http://127.0.0.1:3000
        upstream v1 http://backend:8080/v1/
        route / { upstream api }
        route /api { upstream api }
        route /api/ { upstream api }
        route /api/public/ { upstream api }
        route = /api/public/health { upstream api }
        route = /healthz { upstream api }
        route /static { upstream api }
        route /v1/ { upstream v1; strip_prefix /v1 }
        route /raw/ { upstream v1 }
        route /svc/ { upstream v1; strip_prefix /svc/ }
        route /exact-strip { upstream v1; strip_prefix /exact-strip }
        """

    static func table() throws -> RouteTable {
        let result = loadConf(conf)
        #expect(result.diagnostics.isEmpty)
        return try #require(result.configuration).routes
    }

    @Test(arguments: [
        ("/healthz", "= /healthz"),
        ("/healthz/", "/"),
        ("/healthzz", "/"),
        ("/api", "/api"),
        ("/api/", "/api/"),
        ("/api/x", "/api/"),
        ("/apiary", "/"),
        ("/api/public", "/api/"),
        ("/api/public/", "/api/public/"),
        ("/api/public/health", "= /api/public/health"),
        ("/api/public/health/x", "/api/public/"),
        ("/static", "/static"),
        ("/static/app.js", "/static"),
        ("/staticfile", "/"),
        ("/", "/"),
        ("/API/x", "/"),  // case-sensitive, no normalisation
        ("/api%2Fx", "/"),  // no decoding: %2F is not '/'
        ("/api//x", "/api/"),
    ])
    func match(_ path: String, _ label: String) throws {
        #expect(try Self.table().match(path: path[...])?.label == label)
    }

    @Test func noRoute() throws {
        let result = loadConf("listen 127.0.0.1:0\nupstream api http://h:1\nroute /api { upstream api }\n")
        let table = try #require(result.configuration?.routes)
        #expect(table.match(path: "/apiary") == nil)
        #expect(table.match(path: "/") == nil)
        #expect(table.match(path: "") == nil)
        #expect(table.match(path: "/api")?.label == "/api")
    }

    @Test func queryIsTheCallersBusiness() throws {
        // The caller passes the path before '?'.
        let target = "/api/public/health?x=1"
        let path = target[..<(target.firstIndex(of: "?") ?? target.endIndex)]
        #expect(try Self.table().match(path: path)?.label == "= /api/public/health")
    }

    @Test func matchOrder() throws {
        #expect(
            try Self.table().matchOrder.map(\.label) == [
                "= /api/public/health", "= /healthz", "/api/public/", "/exact-strip", "/static", "/api/", "/raw/",
                "/svc/", "/api", "/v1/", "/",
            ])
    }

    @Test(arguments: [
        ("/v1/users", "/v1/users"),  // strip /v1, base /v1
        ("/v1", "/v1"),  // matched by `/` (route /v1/ needs the slash): upstream api, no base
        ("/v1/", "/v1/"),
        ("/raw/a/b", "/v1/raw/a/b"),  // no strip_prefix: base + path
        ("/svc/users", "/v1/users"),  // strip '/svc/' leaves 'users': kept absolute
        ("/svc/", "/v1/"),
        ("/exact-strip", "/v1/"),
        ("/exact-strip/x", "/v1/x"),
        ("/api/x", "/api/x"),  // empty base path
        ("/", "/"),
    ])
    func forwardPath(_ path: String, _ forwarded: String) throws {
        let route = try #require(try Self.table().match(path: path[...]))
        #expect(route.forwardPath(path: path[...]) == forwarded)
    }

    @Test func stripPrefixOnlyWhenItMatchesAsAPrefix() {
        let upstream = UpstreamConfig(name: "u", scheme: .http, host: "h", port: 80, basePath: "/base")
        let route = Route(kind: .prefix, path: "/", upstream: upstream, cors: nil, maxBodySize: 0, stripPrefix: "/api")
        #expect(route.forwardPath(path: "/api/x") == "/base/x")
        #expect(route.forwardPath(path: "/apiary") == "/base/apiary")  // same rule as a prefix route
        #expect(route.forwardPath(path: "/other") == "/base/other")
        #expect(upstream.authority == "h")
        #expect(upstream.urlPrefix == "http://h/base")
    }

    @Test(arguments: [
        ("http://127.0.0.1:3000", "http", "127.0.0.1", 3000, ""),
        ("HTTPS://API.Example.COM/v1/", "https", "api.example.com", 443, "/v1"),
        ("http://[::1]:8080/a//", "http", "[::1]", 8080, "/a"),
        ("http://h", "http", "h", 80, ""),
        ("http://h/", "http", "h", 80, ""),
    ])
    func upstreamURLs(_ url: String, _ scheme: String, _ host: String, _ port: Int, _ base: String) throws {
        let upstream = try UpstreamConfig.parse(name: "u", url: url).get()
        #expect(upstream.scheme.rawValue == scheme)
        #expect(upstream.host == host)
        #expect(upstream.port == port)
        #expect(upstream.basePath == base)
    }

    @Test(arguments: [
        ("0.0.0.0:8080", "0.0.0.0", 8080, "0.0.0.0:8080"),
        ("[::]:8080", "::", 8080, "[::]:8080"),
        ("[::1]:0", "::1", 0, "[::1]:0"),
        ("localhost:8080", "localhost", 8080, "localhost:8080"),
        ("127.0.0.1:0", "127.0.0.1", 0, "127.0.0.1:0"),
    ])
    func listenAddresses(_ text: String, _ host: String, _ port: Int, _ shown: String) throws {
        let address = try ListenAddress.parse(text).get()
        #expect(address.host == host)
        #expect(address.port == port)
        #expect(address.description == shown)
    }

    @Test(arguments: ["8080", ":8080", "h:", "h:x", "[::1]", "[zz]:80", "1.2.3.256:80", "a b:80", "h:-1"])
    func badListenAddresses(_ text: String) {
        #expect(throws: ValueError.self) { try ListenAddress.parse(text).get() }
    }
}
