import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// deploy/grafana/cors-proxy.json against a real proxy: every metric and label its queries read
/// must be in `/metrics`, so a renamed metric or a misspelled label fails here, not on a
/// dashboard that quietly shows "No data".
@Suite(.serialized)
struct GrafanaDashboardTests {
    static let dashboardPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("deploy/grafana/cors-proxy.json").path

    /// Labels Prometheus attaches to every series it scrapes (the scrape target's), never in `/metrics`.
    static let targetLabels: Set<String> = ["instance", "job"]

    /// What the dashboard must cover at the least (it may show more).
    static let requiredMetrics: Set<String> = [
        "cors_proxy_requests_total", "cors_proxy_denials_total", "cors_proxy_upstream_errors_total",
        "cors_proxy_request_duration_seconds_bucket", "cors_proxy_in_flight_requests", "cors_proxy_reloads_total",
        "cors_proxy_build_info", "cors_proxy_websocket_tunnels", "cors_proxy_tls_handshake_errors_total",
    ]

    /// One PromQL query of the dashboard and where it is.
    struct Query {
        var place: String
        var names: PromQLNames
    }

    /// Every query: each panel's targets (rows' nested panels included) and each query variable.
    static func queries(dashboardJSON data: Data) throws -> [Query] {
        guard let dashboard = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TestFailure("the dashboard is not a JSON object")
        }
        var result: [Query] = []
        func visit(_ panels: [[String: Any]]) throws {
            for panel in panels {
                let title = panel["title"] as? String ?? "?"
                if panel["type"] as? String == "row" {
                    try visit(panel["panels"] as? [[String: Any]] ?? [])
                    continue
                }
                let targets = panel["targets"] as? [[String: Any]] ?? []
                guard !targets.isEmpty else { throw TestFailure("panel '\(title)' has no query") }
                for target in targets {
                    guard let expr = target["expr"] as? String, !expr.isEmpty else {
                        throw TestFailure("panel '\(title)' has a target without expr")
                    }
                    result.append(Query(place: "panel '\(title)'", names: try PromQLNames(expr)))
                }
            }
        }
        try visit(dashboard["panels"] as? [[String: Any]] ?? [])
        let variables = (dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? []
        for variable in variables where variable["type"] as? String == "query" {
            let query = (variable["query"] as? [String: Any])?["query"] as? String ?? variable["query"] as? String
            guard let query else { throw TestFailure("variable '\(variable["name"] ?? "?")' has no query") }
            result.append(
                Query(
                    place: "variable '\(variable["name"] ?? "?")'", names: try PromQLNames(grafanaVariableQuery: query))
            )
        }
        return result
    }

    /// What is wrong with `queries` against `scrape`, one line each; empty when nothing is.
    static func problems(_ queries: [Query], scrape: PrometheusScrape) -> [String] {
        var problems: [String] = []
        for query in queries {
            for selector in query.names.selectors {
                let samples = scrape.samples(named: selector.metric)
                guard !samples.isEmpty else {
                    problems.append("\(query.place): metric \(selector.metric) is not in /metrics")
                    continue
                }
                let labels = Set(samples.flatMap(\.labels.keys)).union(targetLabels)
                for matcher in selector.matchers {
                    guard labels.contains(matcher.label) else {
                        problems.append("\(query.place): \(selector.metric) has no label \(matcher.label)")
                        continue
                    }
                    // A literal value (or a plain a|b|c alternation) must be one the proxy exports.
                    let literal = matcher.value.wholeMatch(of: /[A-Za-z0-9_.\/-]+(\|[A-Za-z0-9_.\/-]+)*/) != nil
                    guard matcher.op == "=" || matcher.op == "=~", literal else { continue }
                    let seen = Set(samples.compactMap { $0.labels[matcher.label] })
                    let wanted =
                        matcher.op == "=" ? [matcher.value] : matcher.value.split(separator: "|").map(String.init)
                    for value in wanted where !seen.contains(value) {
                        problems.append(
                            "\(query.place): \(selector.metric) never has \(matcher.label)=\"\(value)\" (seen: \(seen.sorted()))"
                        )
                    }
                }
            }
            for label in query.names.groupingLabels.subtracting(targetLabels) {
                for metric in query.names.metrics where !scrape.samples(named: metric).isEmpty {
                    if !scrape.samples(named: metric).contains(where: { $0.labels[label] != nil }) {
                        problems.append("\(query.place): groups by \(label), which \(metric) does not carry")
                    }
                }
            }
            if query.names.selectors.isEmpty {
                problems.append("\(query.place): reads no metric")
            }
        }
        return problems
    }

    @Test func everyMetricAndLabelTheDashboardReadsIsExported() throws {
        let queries = try Self.queries(dashboardJSON: Data(contentsOf: URL(fileURLWithPath: Self.dashboardPath)))
        let shown = Set(queries.flatMap(\.names.metrics))
        #expect(
            shown.isSuperset(of: Self.requiredMetrics), "missing panels for \(Self.requiredMetrics.subtracting(shown))")

        // Traffic that makes every series the dashboard reads appear.
        let upstream = try Upstream()
        let proxy = try Proxy(conf: standardConf(upstream: upstream.url, admin: true))
        let app = ("Origin", "https://app.example.com")
        let evil = ("Origin", "https://evil.example")
        let client = proxy.client()
        #expect(try client.request("GET", "/api/items", headers: [app]).status == 200)  // allowed
        #expect(
            try client.request("OPTIONS", "/api/items", headers: [app, ("Access-Control-Request-Method", "PUT")]).status
                == 204)  // allowed preflight
        #expect(try client.request("GET", "/api/items", headers: [evil]).status == 403)  // denied
        #expect(try client.request("GET", "/report/items", headers: [evil]).status == 200)  // reported
        #expect(try client.request("GET", "/nowhere", headers: [app]).status == 404)  // no route
        #expect(try proxy.client().request("GET", "/dead/x", headers: [app]).status == 502)  // upstream error
        let socket = try WebSocketClient.open(port: proxy.port, path: "/api/ws/echo", origin: app.1)  // websocket
        socket.close()
        proxy.process.signal(SIGHUP)  // a reload (the same conf)
        try proxy.process.waitForLine("reload") { $0.contains("conf reloaded") }

        let admin = try #require(proxy.adminPort)
        let scrape = try PrometheusScrape(try HTTPClient(port: admin).request("GET", "/metrics").bodyText)
        let problems = Self.problems(queries, scrape: scrape)
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }

    /// Structure Grafana needs to import the file: unique panel ids, a position for each panel, and
    /// every query on the dashboard's data source variable.
    @Test func dashboardImportsCleanly() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.dashboardPath))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(dashboard["uid"] as? String == "cors-proxy")
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let ids = panels.compactMap { $0["id"] as? Int }
        #expect(ids.count == panels.count && Set(ids).count == ids.count, "panel ids: \(ids)")
        for panel in panels {
            #expect(panel["gridPos"] is [String: Any], "\(panel["title"] ?? "?")")
            guard panel["type"] as? String != "row" else { continue }
            let uid = (panel["datasource"] as? [String: Any])?["uid"] as? String
            #expect(uid == "${datasource}", "\(panel["title"] ?? "?") uses data source \(uid ?? "none")")
        }
    }

    // MARK: - The extractor itself

    @Test func extractorReadsSelectorsAndGroupingAndSkipsFunctionsAndKeywords() throws {
        let names = try PromQLNames(
            #"histogram_quantile(0.99, sum without (instance) (rate(a_bucket{x="1", y!~'z'}[5m] offset 1h)))"#
                + #" > bool 0.5 and on (job) group_left (extra) max by (le) (b) unless sum(rate(c[$__rate_interval])) by (k)"#
        )
        #expect(
            names.selectors == [
                .init(
                    metric: "a_bucket",
                    matchers: [.init(label: "x", op: "=", value: "1"), .init(label: "y", op: "!~", value: "z")]),
                .init(metric: "b", matchers: []),
                .init(metric: "c", matchers: []),
            ])
        #expect(names.groupingLabels == ["instance", "job", "extra", "le", "k"])
    }

    @Test func extractorReadsNameMatchersStringsAndVariables() throws {
        let byName = try PromQLNames(
            #"count({__name__="m", route=~"$route"}) / label_replace(up, "dst", "$1", "src", "(.*)")"#)
        #expect(byName.selectors.map(\.metric) == ["m", "up"])
        #expect(byName.selectors[0].matchers == [.init(label: "route", op: "=~", value: "$route")])
        let variable = try PromQLNames(
            grafanaVariableQuery: "label_values(cors_proxy_requests_total{kind=\"actual\"}, route)")
        #expect(variable.metrics == ["cors_proxy_requests_total"])
        #expect(variable.groupingLabels == ["route"])
    }

    @Test(arguments: [#"x{l="v""#, #"x{l~"v"}"#, #"x{="v"}"#, #"rate(x[5m)"#, #"x{l="v}"#, "{l=\"v\"}"])
    func extractorRefusesWhatItCannotRead(_ expression: String) {
        #expect(throws: TestFailure.self) { try PromQLNames(expression) }
    }

    /// The checker itself: a misspelled metric, a label the metric lacks and a label value it never
    /// has are each reported, against a scrape written out here.
    @Test func checkerReportsWrongNames() throws {
        let scrape = try PrometheusScrape(
            """
            # TYPE cors_proxy_requests_total counter
            cors_proxy_requests_total{route="/api/",kind="actual",outcome="allowed"} 1
            """)
        func problems(_ expr: String) throws -> [String] {
            Self.problems([Query(place: "p", names: try PromQLNames(expr))], scrape: scrape)
        }
        #expect(try problems(#"sum by (kind) (rate(cors_proxy_requests_total{outcome="allowed"}[5m]))"#).isEmpty)
        #expect(
            try problems("rate(cors_proxy_request_total[5m])") == [
                "p: metric cors_proxy_request_total is not in /metrics"
            ])
        #expect(
            try problems(#"cors_proxy_requests_total{reason="x"}"#) == [
                "p: cors_proxy_requests_total has no label reason"
            ])
        #expect(try problems("sum by (reason) (cors_proxy_requests_total)").count == 1)
        #expect(try problems(#"cors_proxy_requests_total{outcome=~"allowed|deny"}"#).count == 1)
        #expect(try problems("sum by (instance) (cors_proxy_requests_total)").isEmpty)
    }
}
