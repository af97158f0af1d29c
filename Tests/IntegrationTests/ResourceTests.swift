import Foundation
import TestSupport
import Testing

/// Nothing leaks: descriptors return to the baseline after aborted transfers.
@Suite(.serialized)
struct ResourceTests {
    func openDescriptors(_ pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// Polls until the proxy's descriptor count is back at `baseline` (bounded).
    func settles(_ pid: Int32, at baseline: Int, timeout: Double = 15) -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        var now = openDescriptors(pid)
        while now > baseline && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
            now = openDescriptors(pid)
        }
        return now
    }

    @Test func clientAbortsMidDownloadAndMidUploadLeakNothing() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: standardConf(upstream: upstream.url))
        let pid = proxy.process.process.processIdentifier
        // Warm up: one exchange opens the pooled upstream connection the baseline includes.
        _ = try proxy.client().request("GET", "/api/items")
        let baseline = openDescriptors(pid)

        for _ in 0..<10 {
            // Mid-download: read the head and a little, then vanish.
            let download = proxy.client()
            try download.send("GET /api/bytes/\(256 << 20) HTTP/1.1\r\nHost: x\r\n\r\n")
            var got = 0
            _ = try? download.readResponse { slice in
                got += slice.count
                if got > 1 << 20 { download.close() }
            }
            download.close()

            // Mid-upload: announce 64 MiB, send 1 MiB, vanish.
            let upload = proxy.client()
            try upload.send("POST /big/upload HTTP/1.1\r\nHost: x\r\nContent-Length: \(64 << 20)\r\n\r\n")
            try upload.send(patternBytes(1 << 20))
            upload.close()
        }
        // The proxy still answers, and its descriptors are back at the baseline.
        #expect(try proxy.client().request("GET", "/api/items").status == 200)
        let after = settles(pid, at: baseline)
        #expect(after <= baseline, "descriptors: \(baseline) before, \(after) after")
    }

    @Test func upstreamFailuresLeakNothing() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: standardConf(upstream: upstream.url))
        let pid = proxy.process.process.processIdentifier
        _ = try proxy.client().request("GET", "/api/items")
        let baseline = openDescriptors(pid)
        for _ in 0..<10 {
            _ = try? proxy.client().request("GET", "/api/reset-mid-body")
            _ = try proxy.client().request("GET", "/dead/x")
            _ = try? proxy.client().request("GET", "/api/close-before-head")
        }
        #expect(try proxy.client().request("GET", "/api/items").status == 200)
        let after = settles(pid, at: baseline)
        #expect(after <= baseline, "descriptors: \(baseline) before, \(after) after")
    }
}
