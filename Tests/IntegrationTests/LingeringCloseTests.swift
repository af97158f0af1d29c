import Foundation
import TestSupport
import Testing

/// A refusal the client actually receives: when the proxy answers while the client is still
/// sending (413 on a large `Content-Length`, 413 mid-body, 431, 400), it writes the answer,
/// shuts its side and reads and drops the rest, instead of closing under the client (a close
/// with unread bytes makes the kernel send RST, and a reset destroys the answer before the
/// client reads it).
@Suite(.serialized)
struct LingeringCloseTests {
    let upstream: Upstream
    let proxy: Proxy

    init() throws {
        upstream = try Upstream()
        proxy = try Proxy(conf: standardConf(upstream: upstream.url))
    }

    private static let origin = "Origin: https://app.example.com\r\n"

    @Test func aClientThatKeepsUploadingPastTheLimitStillReadsThe413Every200Times() throws {
        let body = [UInt8](repeating: 0x61, count: 10 << 20)
        for attempt in 1...200 {
            let client = proxy.client()
            defer { client.close() }
            let head = "POST /api/upload HTTP/1.1\r\nHost: x\r\n\(Self.origin)Content-Length: \(body.count)\r\n\r\n"
            client.sendAllowingClose(Array(head.utf8))
            // All 10 MiB, whatever the proxy thinks of it; then read. A proxy that closed under
            // the client would reset the connection: the send would fail part-way (a browser or
            // curl then reports the reset, not the 413).
            let sent = client.sendAllowingClose(body)
            #expect(sent == body.count, "attempt \(attempt): the upload was cut after \(sent) bytes")
            let response = try client.readResponse()
            #expect(response.status == 413, "attempt \(attempt)")
            #expect(response.value("Access-Control-Allow-Origin") == "https://app.example.com", "attempt \(attempt)")
            #expect(response.bodyText.hasPrefix("413 Content Too Large"), "attempt \(attempt)")
            if response.status != 413 { break }
        }
        #expect(try upstream.receivedTargets().isEmpty, "nothing of a refused body is forwarded")
    }

    @Test func aChunkedUploadOverTheLimitMidBodyIsAnsweredAndReadToo() throws {
        let chunk = Array("100000\r\n".utf8) + [UInt8](repeating: 0x62, count: 0x100000) + Array("\r\n".utf8)
        for attempt in 1...20 {
            let client = proxy.client()
            defer { client.close() }
            client.sendAllowingClose(
                Array("POST /api/upload HTTP/1.1\r\nHost: x\r\n\(Self.origin)Transfer-Encoding: chunked\r\n\r\n".utf8))
            for _ in 0..<4 { client.sendAllowingClose(chunk) }
            let response = try client.readResponse()
            #expect(response.status == 413, "attempt \(attempt)")
            #expect(response.value("Access-Control-Allow-Origin") == "https://app.example.com", "attempt \(attempt)")
        }
    }

    @Test func aHeadTooLargeIsAnsweredWhileTheClientKeepsSending() throws {
        for attempt in 1...20 {
            let client = proxy.client()
            defer { client.close() }
            var head = "GET /api/items HTTP/1.1\r\nHost: x\r\n\(Self.origin)"
            for i in 0..<2000 { head += "X-Filler-\(i): \(String(repeating: "f", count: 40))\r\n" }
            head += "\r\n"
            client.sendAllowingClose(Array(head.utf8))
            let response = try client.readResponse()
            #expect(response.status == 431, "attempt \(attempt)")
        }
    }

    /// True once the proxy has fully closed: a byte sent then gets a reset, and the next send fails.
    private func isClosedByPeer(_ client: HTTPClient) -> Bool {
        client.sendAllowingClose([0x7A])
        Thread.sleep(forTimeInterval: 0.05)  // the RST's round trip on loopback
        return client.sendAllowingClose([0x7A]) == 0
    }

    @Test func aQuietClientIsLetGoAfterASecond() throws {
        let client = proxy.client()
        defer { client.close() }
        client.sendAllowingClose(
            Array("POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: \(10 << 20)\r\n\r\nabc".utf8))
        #expect(try client.readResponse().status == 413)
        #expect(!isClosedByPeer(client), "lingering: what the client sends is still read")
        // The behaviour under test is a timeout: the client stays quiet for longer than it.
        Thread.sleep(forTimeInterval: 1.5)
        #expect(isClosedByPeer(client))
    }

    @Test func aClientThatNeverStopsSendingIsLetGoAfterFiveSeconds() throws {
        let client = proxy.client()
        defer { client.close() }
        client.sendAllowingClose(
            Array("POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: \(10 << 20)\r\n\r\nabc".utf8))
        #expect(try client.readResponse().status == 413)
        let started = Date()
        var open = true
        // A trickle (never a quiet second, never 1 MiB): only the 5 s maximum ends it.
        while open && Date().timeIntervalSince(started) < 10 {
            open = client.sendAllowingClose([UInt8](repeating: 0x7A, count: 100)) > 0
            Thread.sleep(forTimeInterval: 0.1)
        }
        let elapsed = Date().timeIntervalSince(started)
        #expect(!open)
        #expect(elapsed > 4.5 && elapsed < 7, "closed after \(elapsed) s")
    }
}
