// The browser driver: headless Chromium, one process per page, `--dump-dom`.
//
// Why `--dump-dom` with `--virtual-time-budget` and not DevTools or chromedriver: the test pages
// write their results into the DOM (`<pre id="results">`) and Chromium prints the serialized
// DOM when the page is "ready". With a virtual time budget, ready means: loaded, and the
// budget of *virtual* time used up — and virtual time does not advance while a network fetch
// is pending, so every `await fetch()` chain (preflights, the iframe and its POST included)
// finishes before the dump, however slow the machine. No protocol client, no extra package,
// no port. Measured on the busy 2-core CI box: 18/18 complete runs, 6 of them in parallel at
// load 10. The page sets a sentinel (the results JSON replaces the text `pending`), so an
// incomplete dump is reported as such, never misread; and the whole run is bounded in real
// time (a fetch that never completes would stop virtual time forever): on timeout the
// browser's process group is killed and the test fails with Chromium's stderr.

import Foundation
import TestSupport

#if canImport(Glibc)
    import Glibc
#endif

enum Chromium {
    /// `$CHROMIUM`, else the first of chromium / chromium-browser / google-chrome on `$PATH`.
    /// Throws (so the tests fail, never skip) when there is none: `scripts/ensure-deps.sh test`
    /// installs Debian's `chromium`.
    static func executable() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["CHROMIUM"], !explicit.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: explicit) else {
                throw BrowserTestFailure("CHROMIUM=\(explicit) is not an executable file")
            }
            return explicit
        }
        let path = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            for directory in path.split(separator: ":") {
                let candidate = "\(directory)/\(name)"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
        }
        throw BrowserTestFailure(
            "chromium not found on PATH (nor $CHROMIUM): the browser tests need it; "
                + "install it with `scripts/ensure-deps.sh test` (apt-get install chromium)")
    }

    /// Loads `url` in a fresh headless Chromium (temporary profile) and returns the serialized
    /// DOM once the page is done, bounded by `timeout` seconds of real time. With a virtual time
    /// budget (the default) "done" is as above; with nil, Chromium dumps at the page's load event
    /// in real time (a page that waits for WebSocket events holds its load event back itself:
    /// Pages/websocket.js says how). `extraArguments` go before the URL
    /// (`--ignore-certificate-errors-spki-list=…`, say). `whileRunning` runs once the browser
    /// has started (a test that acts on the servers while the page waits).
    static func dumpDOM(
        url: String, extraArguments: [String] = [], virtualTimeBudgetMilliseconds: Int? = 10_000,
        timeout: Double = 60, whileRunning: () throws -> Void = {}
    ) throws -> String {
        let executable = try executable()
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cors-proxy-browser-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: profile) }
        let browser = try ChildProcess(
            executable,
            [
                "--headless",
                "--no-sandbox",  // Chromium refuses to run as root with its sandbox (CI runs as root).
                "--disable-gpu",
                "--user-data-dir=\(profile.path)",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
            ] + (virtualTimeBudgetMilliseconds.map { ["--virtual-time-budget=\($0)"] } ?? []) + ["--dump-dom"]
                + extraArguments + [url],
            name: "chromium")
        defer { browser.stop() }
        try whileRunning()
        guard let status = browser.exitStatusAfterOutput(timeout: timeout) else {
            browser.stop()
            throw BrowserTestFailure(
                "chromium did not finish \(url) within \(Int(timeout)) s; its output:\n"
                    + browser.output.suffix(40).joined(separator: "\n"))
        }
        let dom = browser.stdoutText
        guard status == 0, !dom.isEmpty else {
            throw BrowserTestFailure(
                "chromium exited with \(status) for \(url); its output:\n"
                    + browser.output.suffix(40).joined(separator: "\n"))
        }
        return dom
    }

    /// The text content of the element `<TAG id="ID">` in a serialized DOM (entities decoded).
    static func textContent(ofElement tag: String, id: String, in dom: String) -> String? {
        guard let open = dom.range(of: "<\(tag) id=\"\(id)\">"),
            let close = dom.range(of: "</\(tag)>", range: open.upperBound..<dom.endIndex)
        else { return nil }
        // Text nodes serialize `&`, `<`, `>` and U+00A0 as entities; nothing else.
        return String(dom[open.upperBound..<close.lowerBound])
            .replacingOccurrences(of: "&lt;", with: "<")
            .replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&nbsp;", with: "\u{00A0}")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}
