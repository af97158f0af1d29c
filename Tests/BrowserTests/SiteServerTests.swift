// demo-upstream's static site listener (--site-listen/--site-dir), which serves the browser
// tests' pages and the demo page: content types, and no way out of the directory.

import Foundation
import TestSupport
import Testing

@Suite("demo-upstream site listener")
struct SiteServerTests {
    @Test("serves files with their Content-Type; HEAD has the head only")
    func servesFiles() throws {
        let upstream = try DemoUpstream(siteDirectory: BrowserRun.pagesDirectory)
        let html = try httpRequest(port: upstream.sitePort, "GET", "/cors.html")
        #expect(html.status == 200)
        #expect(html.value("Content-Type") == "text/html; charset=utf-8")
        #expect(String(decoding: html.body, as: UTF8.self).contains("<pre id=\"results\">"))
        let js = try httpRequest(port: upstream.sitePort, "GET", "/cors.js?cache=bust")
        #expect(js.status == 200)
        #expect(js.value("Content-Type") == "text/javascript; charset=utf-8")
        let head = try httpRequest(port: upstream.sitePort, "HEAD", "/cors.js")
        #expect(head.status == 200)
        #expect(head.value("Content-Length") == js.value("Content-Length"))
        #expect(head.body.isEmpty)
        let post = try httpRequest(port: upstream.sitePort, "POST", "/cors.js")
        #expect(post.status == 405)
        // The API listener is unchanged.
        let items = try httpRequest(port: upstream.apiPort, "GET", "/items")
        #expect(items.status == 200)
        #expect(items.value("X-Internal-Trace") == "abc")
    }

    @Test("refuses traversal and encoded tricks with 404")
    func refusesTraversal() throws {
        let upstream = try DemoUpstream(siteDirectory: BrowserRun.pagesDirectory)
        let targets = [
            "/../Package.swift", "/../../Package.swift", "/%2e%2e/Package.swift", "/%2E%2E/%2E%2E/Package.swift",
            "/..%2fPackage.swift", "/%2fetc/passwd", "/Pages/../cors.html", "/./cors.html", "/cors.html%00",
            "/..%5cPackage.swift", "/%252e%252e/Package.swift", "/missing.html", "/", "//etc/passwd",
            "/.hidden",
        ]
        for target in targets {
            let response = try httpRequest(port: upstream.sitePort, "GET", target)
            #expect(response.status == 404, "\(target) -> \(response.status)")
        }
    }
}
