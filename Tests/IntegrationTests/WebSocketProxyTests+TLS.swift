import Foundation
import TestSupport
import Testing

extension WebSocketProxyTests {
    /// `wss://` to a `listen … tls` address, tunnelled to an HTTPS upstream trusted through `ca_file`.
    @Test func wssThroughATLSListenerToAnHTTPSUpstream() throws {
        let certs = try TestCertificates.shared()
        let upstream = try HTTPSUpstream(TestCertificates.Pair(certificate: certs.leafChain, key: certs.leaf.key))
        let proxy = try Proxy(
            conf: """
                listen 127.0.0.1:0 tls
                admin 127.0.0.1:0
                tls {
                    certificate \(certs.leafChain)
                    key         \(certs.leaf.key)
                }
                upstream api { url \(upstream.url); ca_file \(certs.ca.certificate) }
                cors { allow_origin https://app.example.com }
                route /api/ { upstream api }

                """)
        let ws = WebSocketClient(stream: try TLSStream(port: proxy.port, caFile: certs.ca.certificate))
        let response = try ws.handshake(path: "/api/ws/echo", host: "127.0.0.1:\(proxy.port)", origin: Self.app)
        try ws.requireSwitched(response)
        try echo(ws, WebSocketFrame.text, Array("over TLS both ways".utf8))
        try echo(ws, WebSocketFrame.binary, patternBytes(256 << 10))
        try closeCleanly(ws)
        let line = try #require(try logLines(proxy, target: "/api/ws/echo").first)
        #expect(line["status"] == "101" && line["kind"] == "websocket")
        #expect(try metric(proxy, "cors_proxy_upstream_errors_total", ["upstream": "api", "kind": "tls"]) == nil)
    }
}
