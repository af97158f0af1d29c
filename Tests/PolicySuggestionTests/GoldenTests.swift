import PolicySuggestion
import ProxyConfig
import ProxyLog
import Testing

/// The exact text `suggest` prints: what users paste, and what the README shows.
@Suite struct GoldenTests {
    static let log: [String] = [
        denialLine(origin: "https://a.shop.example.net", second: 0),
        denialLine(origin: "https://b.shop.example.net", second: 1, format: .json),
        denialLine(origin: "https://c.shop.example.net", second: 2),
        denialLine(origin: "https://c.shop.example.net", second: 3),
        denialLine(
            kind: "preflight", origin: "https://partner.example.org", requestMethod: "PUT",
            requestHeaders: "Content-Type, X-Trace, Authorization", outcome: "denied", second: 4),
        denialLine(origin: "null", second: 5),
        denialLine(origin: "http://plain.example", second: 6),
        "some other program's line",
        denialLine(
            route: "= /exact", method: "POST", origin: "https://app.example.com", reason: .methodNotAllowed, second: 7),
    ]

    @Test func withConf() throws {
        let configuration = try conf(
            """
            listen 127.0.0.1:0
            upstream api http://127.0.0.1:3000
            cors {
                allow_origin https://app.example.com
                allow_headers Content-Type
            }
            route /api/ {
                upstream api
                enforce report
            }
            route = /exact {
                upstream api
                allow_methods GET HEAD
            }
            """)
        let text = Suggester(configuration: configuration).suggest(digest(Self.log)).text(
            log: "proxy.log", configuration: "proxy.conf")
        #expect(
            text == """
                # cors-proxy suggest: 8 denial lines (1 denied, 7 reported) in 9 lines of proxy.log; 1 line skipped (not cors-proxy log lines)
                # with --config proxy.conf: each allow_* line holds the route's current values, then the additions; it replaces that route's allow_* lines

                route /api/ {
                    allow_origin https://app.example.com https://*.shop.example.net https://partner.example.org  # added: https://*.shop.example.net 4, https://partner.example.org 1
                    #   https://*.shop.example.net   4  2026-12-06T01:23:07.000Z .. 2026-12-06T01:23:10.000Z  c.shop.example.net 2, a.shop.example.net 1, b.shop.example.net 1
                    #   https://partner.example.org  1  2026-12-06T01:23:11.000Z .. 2026-12-06T01:23:11.000Z
                    allow_methods GET HEAD POST PUT  # added: PUT 1
                    #   PUT  1  2026-12-06T01:23:11.000Z .. 2026-12-06T01:23:11.000Z
                    allow_headers Content-Type X-Trace  # added: X-Trace 1
                    #   X-Trace  1  2026-12-06T01:23:11.000Z .. 2026-12-06T01:23:11.000Z
                    # needs a decision:
                    #   Authorization         1  2026-12-06T01:23:11.000Z .. 2026-12-06T01:23:11.000Z  a credential header: every allowed origin could then send credentials; add Authorization to allow_headers yourself if they may
                    #   http://plain.example  1  2026-12-06T01:23:13.000Z .. 2026-12-06T01:23:13.000Z  plain http: anyone on the network path can act as this origin; allow its https:// origin instead, or list it yourself
                    #   null                  1  2026-12-06T01:23:12.000Z .. 2026-12-06T01:23:12.000Z  sandboxed iframes, file: pages and some redirects send it, so any site can; write allow_origin null only if you mean that
                }

                route = /exact {
                    allow_methods GET HEAD POST  # added: POST 1
                    #   POST  1  2026-12-06T01:23:14.000Z .. 2026-12-06T01:23:14.000Z
                }

                """)
    }

    @Test func withoutConfAndMinCount() {
        let text = Suggester(configuration: nil, minCount: 2).suggest(digest(Self.log)).text(
            log: "-", configuration: nil)
        #expect(
            text == """
                # cors-proxy suggest: 8 denial lines (1 denied, 7 reported) in 9 lines of stdin; 1 line skipped (not cors-proxy log lines)
                # without --config: each allow_* line holds only the additions; merge them into the route's current lines (a list written in a route replaces the one it inherits)
                # --min-count 2: what was seen fewer than 2 times is left out

                route /api/ {
                    allow_origin https://*.shop.example.net  # added: https://*.shop.example.net 4
                    #   https://*.shop.example.net  4  2026-12-06T01:23:07.000Z .. 2026-12-06T01:23:10.000Z  c.shop.example.net 2, a.shop.example.net 1, b.shop.example.net 1
                }

                """)
    }
}
