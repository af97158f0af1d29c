import CORSPolicy
import HeaderFields
import Testing
import Upstream

@testable import ProxyServer

struct HeaderRewritingTests {
    @Test func upstreamRequestHeadersDropHopByHopAndSetForwarded() {
        let incoming: [HeaderField] = [
            HeaderField("Host", "proxy.example:8080"), HeaderField("Connection", "keep-alive, X-Secret"),
            HeaderField("X-Secret", "s"),
            HeaderField("Keep-Alive", "timeout=5"), HeaderField("TE", "trailers"), HeaderField("Upgrade", "h2c"),
            HeaderField("Proxy-Connection", "x"),
            HeaderField("Content-Length", "3"), HeaderField("X-Forwarded-For", "10.0.0.1"),
            HeaderField("X-Forwarded-Proto", "https"),
            HeaderField("X-Forwarded-Host", "spoof"), HeaderField("Cookie", "a=1"), HeaderField("Cookie", "b=2"),
            HeaderField("Origin", "https://app.example"),
        ]
        let out = HeaderRewriting.upstreamRequestHeaders(
            incoming, clientAddress: "127.0.0.1", scheme: .http, upstreamHost: "127.0.0.1:3000", preserveHost: false)
        #expect(
            out == [
                HeaderField("Host", "127.0.0.1:3000"), HeaderField("Cookie", "a=1"), HeaderField("Cookie", "b=2"),
                HeaderField("Origin", "https://app.example"), HeaderField("X-Forwarded-For", "10.0.0.1, 127.0.0.1"),
                HeaderField("X-Forwarded-Proto", "http"), HeaderField("X-Forwarded-Host", "proxy.example:8080"),
            ])
        let preserved = HeaderRewriting.upstreamRequestHeaders(
            incoming, clientAddress: "127.0.0.1", scheme: .http, upstreamHost: "127.0.0.1:3000", preserveHost: true)
        #expect(preserved.first == HeaderField("Host", "proxy.example:8080"))
    }

    @Test func responseStripsUpstreamCORSAndMergesVary() {
        let upstream = [
            HeaderField("Content-Type", "application/json"), HeaderField("Access-Control-Allow-Origin", "*"),
            HeaderField("access-control-allow-credentials", "true"), HeaderField("Vary", "Accept-Encoding"),
            HeaderField("Vary", "origin"), HeaderField("Transfer-Encoding", "chunked"),
            HeaderField("Connection", "close"),
            HeaderField("Content-Length", "12"), HeaderField("Set-Cookie", "a=1"), HeaderField("Set-Cookie", "b=2"),
        ]
        let (headers, length) = HeaderRewriting.clientResponseHeaders(
            upstream, stripCORS: true, varyOrigin: true,
            add: [HeaderField("Access-Control-Allow-Origin", "https://app.example")])
        #expect(length == 12)
        #expect(
            headers.map { "\($0.name): \($0.value)" } == [
                "Content-Type: application/json", "Vary: Accept-Encoding, origin", "Set-Cookie: a=1", "Set-Cookie: b=2",
                "Access-Control-Allow-Origin: https://app.example",
            ])
    }

    @Test func varyStarIsKeptAndOriginAddedOtherwise() {
        let star = HeaderRewriting.clientResponseHeaders(
            [HeaderField("Vary", "*")], stripCORS: true, varyOrigin: true, add: [])
        #expect(star.headers.map { "\($0.name): \($0.value)" } == ["Vary: *"])
        let none = HeaderRewriting.clientResponseHeaders([], stripCORS: true, varyOrigin: true, add: [])
        #expect(none.headers.map { "\($0.name): \($0.value)" } == ["Vary: Origin"])
        let off = HeaderRewriting.clientResponseHeaders(
            [HeaderField("Access-Control-Allow-Origin", "*")], stripCORS: false, varyOrigin: false, add: [])
        #expect(off.headers.map { "\($0.name): \($0.value)" } == ["Access-Control-Allow-Origin: *"])
    }
}
