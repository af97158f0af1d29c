import Testing

@testable import ProxyConfig

/// One conf and the exact diagnostics it must produce.
struct Golden: CustomTestStringConvertible, Sendable {
    var name: String
    var conf: String
    var expected: [String]
    var env: [String: String] = [:]
    var testDescription: String { name }

    init(_ name: String, _ conf: String, _ expected: [String], env: [String: String] = [:]) {
        self.name = name
        self.conf = conf
        self.expected = expected
        self.env = env
    }

    /// Loads the conf: exactly the expected diagnostics, and a configuration unless one is an error.
    func check(sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        let result = loadConf(conf, env: env)
        #expect(result.diagnostics.map(\.description) == expected, sourceLocation: sourceLocation)
        let hasErrors = expected.contains { $0.contains(": error: ") }
        #expect((result.configuration == nil) == hasErrors, sourceLocation: sourceLocation)
    }
}

/// Every refusal of docs/CONFIG.md §9, as exact golden lines.
/// `head` is lines 1-2 (listen, upstream api), so cases start on line 3.
@Suite struct RefusalTests {
    static let cases: [Golden] = [
        // Unknown directive: at the name.
        Golden(
            "unknown directive", head + "bogus 1\n",
            [
                "proxy.conf:3:1: error: unknown directive 'bogus'; expected one of: listen, admin, self_origin, upstream, max_body_size, drain_timeout, log_format, cors, route, tls"
            ]),
        Golden(
            "unknown directive with suggestion", head + "route /a/ {\n  upstream api\n  alow_origin *\n}\n",
            [
                "proxy.conf:5:3: error: unknown directive 'alow_origin'; did you mean allow_origin?"
            ]),
        Golden(
            "unknown directive skips its block", head + "server {\n  listen 1.2.3.4:80\n}\n",
            [
                "proxy.conf:3:1: error: unknown directive 'server'; expected one of: listen, admin, self_origin, upstream, max_body_size, drain_timeout, log_format, cors, route, tls"
            ]),
        // Wrong block: at the name.
        Golden(
            "listen in a route", head + "route /a/ {\n  upstream api\n  listen 1.2.3.4:80\n}\n",
            [
                "proxy.conf:5:3: error: listen is not allowed inside a route; move it to the top level"
            ]),
        Golden(
            "CORS directive at top level", head + "allow_origin *\n",
            [
                "proxy.conf:3:1: error: allow_origin belongs inside cors { … } (defaults for every route) or inside a route"
            ]),
        Golden(
            "top-level directives in cors", head + "cors {\n  listen 1.2.3.4:80\n  upstream api\n}\n",
            [
                "proxy.conf:4:3: error: listen is not allowed inside cors { … }; move it to the top level",
                "proxy.conf:5:3: error: upstream is not allowed inside cors { … }; move it to the top level",
            ]),
        Golden(
            "CORS directive in upstream", head + "upstream b {\n  url http://x\n  allow_origin *\n}\n",
            [
                "proxy.conf:5:3: error: allow_origin is not allowed inside upstream { … }, which holds url, connect_timeout, timeout, ca_file, tls_verify, client_certificate and client_key"
            ]),
        Golden(
            "route-only directive in cors", head + "cors {\n  preserve_host on\n}\n",
            [
                "proxy.conf:4:3: error: preserve_host is not allowed inside cors { … }, which holds only CORS directives (allow_origin, allow_methods, allow_headers, expose_headers, allow_credentials, max_age, allow_private_network, enforce, preflight_status, websocket)"
            ]),
        Golden(
            "url at top level", head + "url http://x\n",
            [
                "proxy.conf:3:1: error: url belongs inside an upstream NAME { … } block"
            ]),
        Golden(
            "nested route", head + "route /a/ {\n  upstream api\n  route /b/ { upstream api }\n}\n",
            [
                "proxy.conf:5:3: error: routes do not nest; close this route with '}' before the next one"
            ]),
        Golden(
            "cors block in a route", head + "route /a/ { upstream api; cors { allow_origin * } }\n",
            [
                "proxy.conf:3:27: error: cors { … } is only allowed at the top level; write CORS directives directly in the route"
            ]),
        Golden(
            "block after a plain directive", head + "listen 1.2.3.4:80 {\n  x\n}\n",
            [
                "proxy.conf:3:19: error: listen does not take a block; remove the '{ … }'"
            ]),
        // Arity: missing at the name, extra at the first extra argument.
        Golden(
            "missing argument", head + "listen\n",
            [
                "proxy.conf:3:1: error: listen needs one argument; write listen 0.0.0.0:8080"
            ]),
        Golden(
            "extra argument", head + "listen [::]:8080 extra\n",
            [
                "proxy.conf:3:18: error: listen takes HOST:PORT and optionally tls, not 'extra'; write listen 0.0.0.0:8080 or listen 0.0.0.0:8443 tls"
            ]),
        Golden(
            "allow_origin without values", head + "cors {\n  allow_origin\n}\n",
            [
                "proxy.conf:4:3: error: allow_origin needs at least one value; write allow_origin https://app.example.com"
            ]),
        Golden(
            "upstream without URL", head + "upstream b\n",
            [
                "proxy.conf:3:1: error: upstream b needs a URL; write upstream NAME http://HOST:PORT, or upstream NAME { url http://HOST:PORT }"
            ]),
        Golden(
            "upstream block without url", head + "upstream x { connect_timeout 1s }\n",
            [
                "proxy.conf:3:1: error: upstream x has no url; add url http://HOST:PORT inside its block"
            ]),
        Golden(
            "route without block", head + "route /a/\n",
            [
                "proxy.conf:3:1: error: route needs a block; write route /api/ { upstream NAME } or route = /healthz { upstream NAME }"
            ]),
        Golden(
            "route without path", head + "route = { upstream api }\n",
            [
                "proxy.conf:3:1: error: route needs a path; write route /api/ { upstream NAME } or route = /healthz { upstream NAME }"
            ]),
        Golden(
            "brace on the next line", head + "route /a/\n{\n  upstream api\n}\n",
            [
                "proxy.conf:3:1: error: route needs a block; write route /api/ { upstream NAME } or route = /healthz { upstream NAME }",
                "proxy.conf:4:1: error: '{' must follow a block directive on the same line (cors {, upstream NAME {, route PATH {); move it up or remove it",
            ]),
        // Values: at the argument.
        Golden(
            "listen without port", head + "listen 0.0.0.0\n",
            [
                "proxy.conf:3:8: error: '0.0.0.0' has no port; write HOST:PORT, e.g. 0.0.0.0:8080, [::]:8080 or localhost:8080"
            ]),
        Golden(
            "IPv6 without brackets", head + "admin 1:2:3\n",
            [
                "proxy.conf:3:7: error: write an IPv6 address in brackets, e.g. [::]:8080"
            ]),
        Golden(
            "listen port out of range", head + "listen 0.0.0.0:65536\n",
            [
                "proxy.conf:3:8: error: the port must be a number from 0 to 65535, not '65536'"
            ]),
        Golden(
            "duplicate listen", head + "listen 1.2.3.4:80\nlisten 1.2.3.4:80\n",
            [
                "proxy.conf:4:8: error: listen 1.2.3.4:80 is already given on line 3; remove one"
            ]),
        Golden(
            "admin twice", head + "admin 127.0.0.1:1\nadmin 127.0.0.1:2\n",
            [
                "proxy.conf:4:1: error: admin is already set on line 3 of this block; keep one"
            ]),
        Golden(
            "admin equals listen", "listen 127.0.0.1:8080\nadmin 127.0.0.1:8080\n",
            [
                "proxy.conf:2:7: error: admin 127.0.0.1:8080 is also a listen address; give the admin listener its own port"
            ]),
        Golden(
            "bad self_origin", head + "self_origin https://a.com/\n",
            [
                "proxy.conf:3:13: error: invalid origin 'https://a.com/' in self_origin: an origin has no path, not even a trailing '/'; write https://a.com (self_origin lists exact origins, e.g. https://proxy.example.com)"
            ]),
        Golden(
            "URL scheme", head + "upstream x ftp://host\n",
            [
                "proxy.conf:3:12: error: an upstream URL starts with http:// or https://, e.g. http://127.0.0.1:3000 or https://api.internal:8443/v1"
            ]),
        Golden(
            "URL not a URL", head + "upstream x localhost:3000\n",
            [
                "proxy.conf:3:12: error: 'localhost:3000' is not a URL; write http://HOST[:PORT][/PATH], e.g. http://127.0.0.1:3000 or https://api.internal:8443/v1"
            ]),
        Golden(
            "URL without host", head + "upstream x http://\n",
            [
                "proxy.conf:3:12: error: the upstream URL has no host, e.g. http://127.0.0.1:3000 or https://api.internal:8443/v1"
            ]),
        Golden(
            "URL with query", head + "upstream x http://h/p?q=1\n",
            [
                "proxy.conf:3:12: error: an upstream URL has no query or fragment (the request's query is appended); remove what follows '?' or '#'"
            ]),
        Golden(
            "URL with fragment", head + "upstream x { url \"http://h/#top\" }\n",
            [
                "proxy.conf:3:18: error: an upstream URL has no query or fragment (the request's query is appended); remove what follows '?' or '#'"
            ]),
        Golden(
            "URL with userinfo", head + "upstream x http://u:p@h\n",
            [
                "proxy.conf:3:12: error: an upstream URL has no user name or password; remove the part before '@'"
            ]),
        Golden(
            "URL port 0", head + "upstream x http://h:0\n",
            [
                "proxy.conf:3:12: error: the upstream port must be a number from 1 to 65535, not '0'"
            ]),
        Golden(
            "duplicate upstream", head + "upstream api http://other\n",
            [
                "proxy.conf:3:10: error: upstream api is already defined on line 2; rename one"
            ]),
        Golden(
            "bad upstream name", head + "upstream a/b http://x\n",
            [
                "proxy.conf:3:10: error: 'a/b' is not an upstream name; use letters, digits, '_', '-' or '.'"
            ]),
        Golden(
            "URL both inline and in block", head + "upstream b http://x { url http://y }\n",
            [
                "proxy.conf:3:12: error: give the upstream URL either after the name or inside the block as url, not both; remove 'http://x'"
            ]),
        Golden(
            "zero timeout", head + "upstream b {\n  url http://x\n  timeout 0\n}\n",
            [
                "proxy.conf:5:11: error: timeout must be more than 0; write e.g. 5s"
            ]),
        Golden(
            "malformed origin", head + "cors {\n  allow_origin https://a.com/\n}\n",
            [
                "proxy.conf:4:16: error: invalid origin 'https://a.com/' in allow_origin: an origin has no path, not even a trailing '/'; write https://a.com"
            ]),
        Golden(
            "wildcard over a TLD", head + "cors {\n  allow_origin https://*.com\n}\n",
            [
                "proxy.conf:4:16: error: invalid origin 'https://*.com' in allow_origin: what follows '*.' must have at least two labels (e.g. https://*.example.com, not https://*.com)"
            ]),
        Golden(
            "wildcard in the middle",
            head + "route /a/ {\n  upstream api\n  allow_origin https://api.*.example.com\n}\n",
            [
                "proxy.conf:5:16: error: invalid origin 'https://api.*.example.com' in allow_origin: '*' may only stand for the leftmost label(s) of the host, e.g. https://*.example.com"
            ]),
        Golden(
            "malformed regex", head + "cors {\n  allow_origin ~(\n}\n",
            [
                "proxy.conf:4:16: error: invalid origin '~(' in allow_origin: invalid regular expression: unclosed '(' at offset 0; close it with ')' or write '\\(' for a literal '('"
            ]),
        Golden(
            "malformed method", head + "cors {\n  allow_methods GET P(ST\n}\n",
            [
                "proxy.conf:4:21: error: 'P(ST' in allow_methods is not a method name (a token such as GET or PATCH)"
            ]),
        Golden(
            "malformed header", head + "cors {\n  allow_headers \"X Y\"\n}\n",
            [
                "proxy.conf:4:17: error: 'X Y' in allow_headers is not a header name (a token such as X-Request-Id)"
            ]),
        Golden(
            "unknown values",
            head
                + "cors {\n  max_age 10x\n  enforce maybe\n  preflight_status 201\n  allow_credentials yes\n  allow_private_network 1\n}\n",
            [
                "proxy.conf:4:11: error: '10x' is not a duration; write a duration like 250ms, 30s, 5m or 1h (a bare number is seconds)",
                "proxy.conf:5:11: error: enforce takes on, report or off, not 'maybe'",
                "proxy.conf:6:20: error: preflight_status takes 204 or 200, not '201'",
                "proxy.conf:7:21: error: allow_credentials takes on or off, not 'yes'",
                "proxy.conf:8:25: error: allow_private_network takes on or off, not '1'",
            ]),
        Golden(
            "malformed size and duration", head + "max_body_size 10q\ndrain_timeout -1\n",
            [
                "proxy.conf:3:15: error: '10q' is not a size; write a size like 512, 64k, 10m or 1g",
                "proxy.conf:4:15: error: '-1' is not a duration; write a duration like 250ms, 30s, 5m or 1h (a bare number is seconds)",
            ]),
        Golden(
            "repeated scalar", head + "route /a/ { upstream api\n max_body_size 1m\n max_body_size 2m }\n",
            [
                "proxy.conf:5:2: error: max_body_size is already set on line 4 of this block; keep one"
            ]),
        Golden(
            "cors on in a route", head + "route /a/ { upstream api; cors on }\n",
            [
                "proxy.conf:3:32: error: a route takes cors off (pass-through), not 'on'; CORS is on unless turned off"
            ]),
        Golden(
            "preserve_host value", head + "route /a/ { upstream api; preserve_host yes }\n",
            [
                "proxy.conf:3:41: error: preserve_host takes on or off, not 'yes'"
            ]),
        Golden(
            "strip_prefix value", head + "route /a/ { upstream api; strip_prefix a }\n",
            [
                "proxy.conf:3:40: error: strip_prefix takes a path prefix starting with '/' and without '?', e.g. strip_prefix /api"
            ]),
        // Routes.
        Golden(
            "route path without slash", head + "route api { upstream api }\n",
            [
                "proxy.conf:3:7: error: a route path starts with '/', e.g. /api/ (not 'api')"
            ]),
        Golden(
            "exact route without space", head + "route =/a { upstream api }\n",
            [
                "proxy.conf:3:7: error: write an exact route with a space after '=': route = /a"
            ]),
        Golden(
            "route path with query", head + "route = /a?x=1 { upstream api }\n",
            [
                "proxy.conf:3:9: error: a route path has no query or fragment: matching ignores the query; remove what follows '?'"
            ]),
        Golden(
            "route without upstream (at route)", head + "route /a/ {\n  allow_origin https://a.com\n}\n",
            [
                "proxy.conf:3:1: error: route /a/ has no upstream; add upstream NAME inside its block"
            ]),
        Golden(
            "undefined upstream (at the argument)", head + "route /a/ {\n  upstream nope\n}\n",
            [
                "proxy.conf:4:12: error: upstream 'nope' is not defined; add upstream nope http://HOST:PORT at the top level"
            ]),
        Golden(
            "upstream defined after the route is fine",
            "listen 127.0.0.1:0\nroute /a/ { upstream late }\nupstream late http://x\n", []),
        Golden(
            "route upstream with URL", head + "route /a/ { upstream api http://x }\n",
            [
                "proxy.conf:3:26: error: in a route, upstream takes only a name; define the URL at the top level with upstream NAME URL"
            ]),
        Golden(
            "duplicate prefix route", head + "route /a/ { upstream api }\nroute /a/ { upstream api }\n",
            [
                "proxy.conf:4:7: error: route /a/ is already defined on line 3; merge the two blocks"
            ]),
        Golden(
            "duplicate exact route", head + "route = /a { upstream api }\nroute = /a { upstream api }\n",
            [
                "proxy.conf:4:9: error: route = /a is already defined on line 3; merge the two blocks"
            ]),
        Golden(
            "exact and prefix on one path are not duplicates",
            head + "route = /a { upstream api }\nroute /a { upstream api }\n", []),
        // Credentials with `*`: at the `*`, or at the route's allow_credentials
        // when the `*` is inherited.
        Golden(
            "* origin with credentials", head + "cors {\n  allow_origin *\n  allow_credentials on\n}\n",
            [
                "proxy.conf:4:16: error: '*' in allow_origin cannot be used with allow_credentials on; list the origins"
            ]),
        Golden(
            "* methods with credentials", head + "cors {\n  allow_methods *\n  allow_credentials on\n}\n",
            [
                "proxy.conf:4:17: error: '*' in allow_methods cannot be used with allow_credentials on; list the methods"
            ]),
        Golden(
            "* headers and expose with credentials",
            head + "cors {\n  allow_headers *\n  expose_headers *\n  allow_credentials on\n}\n",
            [
                "proxy.conf:4:17: error: '*' in allow_headers cannot be used with allow_credentials on; list the header names",
                "proxy.conf:5:18: error: '*' in expose_headers cannot be used with allow_credentials on; list the header names",
            ]),
        Golden(
            "route turns credentials on over inherited *",
            head + "cors {\n  allow_origin *\n}\nroute /a/ {\n  upstream api\n  allow_credentials on\n}\n",
            [
                "proxy.conf:8:3: error: allow_credentials on cannot be used with '*' in allow_origin inherited from cors { } (line 4); list the origins in this route, or turn credentials off"
            ]),
        Golden(
            "route writes * over inherited credentials",
            head + "cors {\n  allow_credentials on\n}\nroute /a/ {\n  upstream api\n  allow_origin *\n}\n",
            [
                "proxy.conf:8:16: error: '*' in allow_origin cannot be used with allow_credentials on; list the origins"
            ]),
        Golden(
            "inherited conflict reported once, in cors {}",
            head
                + "cors {\n  allow_origin *\n  allow_credentials on\n}\nroute /a/ { upstream api }\nroute /b/ { upstream api }\n",
            [
                "proxy.conf:4:16: error: '*' in allow_origin cannot be used with allow_credentials on; list the origins"
            ]),
        Golden(
            "route turning credentials off fixes the inherited conflict",
            head + "cors {\n  allow_headers *\n}\nroute /a/ { upstream api; allow_credentials off }\n", []),
        // Missing listen: at 1:1.
        Golden(
            "no listen", "upstream api http://127.0.0.1:3000\n",
            [
                "proxy.conf:1:1: error: no listen directive; add one, e.g. listen 0.0.0.0:8080"
            ]),
        Golden("empty file", "", ["proxy.conf:1:1: error: no listen directive; add one, e.g. listen 0.0.0.0:8080"]),
        // Blocks.
        Golden(
            "unclosed route (at its '{')", head + "route /a/ {\n  upstream api\n",
            [
                "proxy.conf:3:11: error: the '{' of route is never closed; add '}' at the end of the block"
            ]),
        Golden(
            "unclosed cors", head + "cors {\n  allow_origin https://a.com\n",
            [
                "proxy.conf:3:6: error: the '{' of cors is never closed; add '}' at the end of the block"
            ]),
        Golden("stray close", head + "}\n", ["proxy.conf:3:1: error: unexpected '}' with no open block; remove it"]),
        Golden(
            "stray open", head + "{{{{\n",
            [
                "proxy.conf:3:1: error: '{' must follow a block directive on the same line (cors {, upstream NAME {, route PATH {); move it up or remove it",
                "proxy.conf:3:1: error: this '{' is never closed; add '}'",
            ]),
        Golden(
            "second cors block", head + "cors { allow_origin https://a.com }\ncors { allow_origin https://b.com }\n",
            [
                "proxy.conf:4:1: error: cors { … } is already given on line 3; merge the two blocks"
            ]),
        Golden(
            "cors off at top level", head + "cors off\n",
            [
                "proxy.conf:3:1: error: cors off is only allowed inside a route; at the top level, leave out allow_origin so nothing is allowed"
            ]),
        // Lexical.
        Golden(
            "unclosed quote", head + "cors {\n  allow_origin \"https://a.com\n}\n",
            [
                "proxy.conf:4:16: error: unclosed quote; end the string with '\"' on the same line"
            ]),
        Golden(
            "unset variable (at the ${)", head + "cors { allow_origin https://a.com ${NOPE}\n}\n",
            [
                "proxy.conf:3:35: error: environment variable NOPE is not set; set it or write ${NOPE:-default}"
            ]),
        Golden(
            "unset variable inside a word", head + "upstream b http://${HOST}:3000\n",
            [
                "proxy.conf:3:19: error: environment variable HOST is not set; set it or write ${HOST:-default}"
            ]),
        Golden(
            "unset variable inside quotes", head + "upstream b \"http://${HOST}:3000\"\n",
            [
                "proxy.conf:3:20: error: environment variable HOST is not set; set it or write ${HOST:-default}"
            ]),
        Golden(
            "bad variable name", head + "upstream b ${bad name}\n",
            [
                "proxy.conf:3:12: error: '${bad name}' is not a variable reference; write ${NAME} or ${NAME:-default} (NAME is letters, digits and '_')"
            ]),
        Golden(
            "unclosed ${", head + "upstream b ${UNCLOSED\n",
            [
                "proxy.conf:3:12: error: '${' is not closed; write ${NAME} or ${NAME:-default} on one line"
            ]),
        // All errors of a file in one run, resyncing at ; newline and }.
        Golden(
            "many errors in one run",
            head
                + "bogus; listen x\ncors { enforce maybe; max_age 1q }\nroute /a/ { upstream nope; preserve_host maybe }\n",
            [
                "proxy.conf:3:1: error: unknown directive 'bogus'; expected one of: listen, admin, self_origin, upstream, max_body_size, drain_timeout, log_format, cors, route, tls",
                "proxy.conf:3:15: error: 'x' has no port; write HOST:PORT, e.g. 0.0.0.0:8080, [::]:8080 or localhost:8080",
                "proxy.conf:4:16: error: enforce takes on, report or off, not 'maybe'",
                "proxy.conf:4:31: error: '1q' is not a duration; write a duration like 250ms, 30s, 5m or 1h (a bare number is seconds)",
                "proxy.conf:5:22: error: upstream 'nope' is not defined; add upstream nope http://HOST:PORT at the top level",
                "proxy.conf:5:42: error: preserve_host takes on or off, not 'maybe'",
            ]),
    ]

    @Test(arguments: cases)
    func golden(_ c: Golden) {
        c.check()
    }

    /// Columns are Characters, not bytes or scalars (docs/CONFIG.md, "Diagnostics").
    @Test(arguments: [
        ("route /日本/ { upstream nope }\n", 23),
        ("route /cafe\u{301}/ { upstream nope }\n", 25),  // e + combining accent: one Character
        ("route /👩‍👩‍👧/ { upstream nope }\n", 22),  // a ZWJ family: one Character
    ])
    func nonASCIIColumn(_ line: String, _ column: Int) {
        let result = loadConf(head + line)
        #expect(
            result.diagnostics.map(\.description) == [
                "proxy.conf:3:\(column): error: upstream 'nope' is not defined; add upstream nope http://HOST:PORT at the top level"
            ])
    }

    @Test func diagnosticRendering() {
        let error = Diagnostic(file: "a/proxy.conf", line: 12, column: 5, severity: .error, message: "boom")
        let warning = Diagnostic(file: "p.conf", line: 1, column: 1, severity: .warning, message: "hm")
        #expect(error.description == "a/proxy.conf:12:5: error: boom")
        #expect(warning.description == "p.conf:1:1: warning: hm")
    }
}
