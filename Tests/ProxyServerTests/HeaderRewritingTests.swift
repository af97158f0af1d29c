import CORSPolicy
import CurlBridge
import Testing

@testable import ProxyServer

struct HeaderRewritingTests {
    @Test func upstreamRequestHeadersDropHopByHopAndSetForwarded() {
        let incoming: [(name: String, value: String)] = [
            ("Host", "proxy.example:8080"), ("Connection", "keep-alive, X-Secret"), ("X-Secret", "s"),
            ("Keep-Alive", "timeout=5"), ("TE", "trailers"), ("Upgrade", "h2c"), ("Proxy-Connection", "x"),
            ("Content-Length", "3"), ("X-Forwarded-For", "10.0.0.1"), ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "spoof"), ("Cookie", "a=1"), ("Cookie", "b=2"), ("Origin", "https://app.example"),
        ]
        let out = HeaderRewriting.upstreamRequestHeaders(
            incoming, clientAddress: "127.0.0.1", scheme: .http, upstreamHost: "127.0.0.1:3000", preserveHost: false)
        #expect(
            out == [
                HeaderLine("Host", "127.0.0.1:3000"), HeaderLine("Cookie", "a=1"), HeaderLine("Cookie", "b=2"),
                HeaderLine("Origin", "https://app.example"), HeaderLine("X-Forwarded-For", "10.0.0.1, 127.0.0.1"),
                HeaderLine("X-Forwarded-Proto", "http"), HeaderLine("X-Forwarded-Host", "proxy.example:8080"),
            ])
        let preserved = HeaderRewriting.upstreamRequestHeaders(
            incoming, clientAddress: "127.0.0.1", scheme: .http, upstreamHost: "127.0.0.1:3000", preserveHost: true)
        #expect(preserved.first == HeaderLine("Host", "proxy.example:8080"))
    }

    @Test func responseStripsUpstreamCORSAndMergesVary() {
        let upstream = [
            HeaderLine("Content-Type", "application/json"), HeaderLine("Access-Control-Allow-Origin", "*"),
            HeaderLine("access-control-allow-credentials", "true"), HeaderLine("Vary", "Accept-Encoding"),
            HeaderLine("Vary", "origin"), HeaderLine("Transfer-Encoding", "chunked"), HeaderLine("Connection", "close"),
            HeaderLine("Content-Length", "12"), HeaderLine("Set-Cookie", "a=1"), HeaderLine("Set-Cookie", "b=2"),
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
            [HeaderLine("Vary", "*")], stripCORS: true, varyOrigin: true, add: [])
        #expect(star.headers.map { "\($0.name): \($0.value)" } == ["Vary: *"])
        let none = HeaderRewriting.clientResponseHeaders([], stripCORS: true, varyOrigin: true, add: [])
        #expect(none.headers.map { "\($0.name): \($0.value)" } == ["Vary: Origin"])
        let off = HeaderRewriting.clientResponseHeaders(
            [HeaderLine("Access-Control-Allow-Origin", "*")], stripCORS: false, varyOrigin: false, add: [])
        #expect(off.headers.map { "\($0.name): \($0.value)" } == ["Access-Control-Allow-Origin: *"])
    }
}
