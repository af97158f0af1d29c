import CORSPolicy
import Testing

@testable import ProxyConfig

/// `websocket on|off` in routes and `cors { }`, and the warning about tunnelling WebSocket
/// for every origin. `head` is lines 1-2, so cases start on line 3.
@Suite struct WebSocketConfTests {
    static let warningText =
        "lets every site open a WebSocket here that carries the user's cookies (browsers apply no CORS to WebSocket, so the origin check is the only guard)"

    static let cases: [Golden] = [
        Golden(
            "a route's own * with websocket on by default",
            head + "route /a/ {\n  upstream api\n  allow_origin *\n}\n",
            [
                "proxy.conf:5:16: warning: '*' in allow_origin \(warningText); list the origins, or write websocket off"
            ]),
        Golden(
            "* in cors { } inherited by two routes: one warning, at the *",
            head + "cors {\n  allow_origin *\n}\nroute /a/ { upstream api }\nroute /b/ { upstream api }\n",
            [
                "proxy.conf:4:16: warning: '*' in allow_origin \(warningText); list the origins, or write websocket off"
            ]),
        Golden(
            "a route turns websocket on over an inherited *: at the route's websocket",
            head + "cors {\n  allow_origin *\n  websocket off\n}\nroute /a/ {\n  upstream api\n  websocket on\n}\n",
            [
                "proxy.conf:9:3: warning: websocket on with '*' in allow_origin inherited from cors { } (line 4) \(warningText); list the origins in this route, or write websocket off"
            ]),
        Golden(
            "websocket off in the route: no warning",
            head + "route /a/ { upstream api; allow_origin *; websocket off }\n", []),
        Golden(
            "websocket off in cors { }, inherited: no warning",
            head + "cors { allow_origin *; websocket off }\nroute /a/ { upstream api }\n", []),
        Golden(
            "a route listing its origins over an inherited *: no warning",
            head + "cors { allow_origin * }\nroute /a/ { upstream api; allow_origin https://a.example.com }\n", []),
        Golden(
            "* in cors { } with no route: no warning (the no-route 404 tunnels nothing)",
            head + "cors { allow_origin * }\n", []),
        Golden(
            "websocket in a cors off route has no effect",
            head + "route /a/ {\n  upstream api\n  cors off\n  websocket off\n}\n",
            [
                "proxy.conf:6:3: warning: websocket has no effect in a route with cors off (line 5); remove one of them"
            ]),
        Golden(
            "bad value", head + "cors {\n  websocket yes\n}\n",
            [
                "proxy.conf:4:13: error: websocket takes on or off, not 'yes'"
            ]),
        Golden(
            "twice in one block", head + "route /a/ {\n  upstream api\n  websocket on\n  websocket off\n}\n",
            [
                "proxy.conf:6:3: error: websocket is already set on line 5 of this block; keep one"
            ]),
        Golden(
            "missing value", head + "cors { websocket }\n",
            [
                "proxy.conf:3:8: error: websocket needs one argument; write websocket off"
            ]),
        Golden(
            "at the top level", head + "websocket off\n",
            [
                "proxy.conf:3:1: error: websocket belongs inside cors { … } (defaults for every route) or inside a route"
            ]),
        Golden(
            "in an upstream block", head + "upstream b {\n  url http://x\n  websocket off\n}\n",
            [
                "proxy.conf:5:3: error: websocket is not allowed inside upstream { … }, which holds url, connect_timeout, timeout, ca_file, tls_verify, client_certificate and client_key"
            ]),
    ]

    @Test(arguments: cases)
    func golden(_ c: Golden) {
        c.check()
    }

    @Test func inheritedAndOverridden() throws {
        let config = try #require(
            loadConf(
                head
                    + "cors { allow_origin https://a.example.com; websocket off }\nroute /off/ { upstream api }\nroute /on/ { upstream api; websocket on }\nroute /raw/ { upstream api; cors off }\n"
            ).configuration)
        #expect(config.defaultCORS.websocket == false)
        #expect(config.routes.match(path: "/off/x")?.cors?.websocket == false)
        #expect(config.routes.match(path: "/on/x")?.cors?.websocket == true)
        // cors off: no CORS settings at all; the server tunnels without an origin check.
        #expect(config.routes.match(path: "/raw/x")?.cors == nil)
        #expect(CORSSettings().websocket == true)
    }

    @Test func checkTableShowsIt() throws {
        let config = try #require(
            loadConf(head + "cors { allow_origin https://a.example.com }\nroute /a/ { upstream api; websocket off }\n")
                .configuration)
        let table = config.checkTable()
        #expect(table.contains("\n  websocket              on\n\nroute /a/"), "\(table)")
        #expect(table.hasSuffix("  preflight_status       204\n  websocket              off\n"), "\(table)")
    }
}
