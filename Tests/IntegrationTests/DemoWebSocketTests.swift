import Foundation
import TestSupport
import Testing

/// The demo upstream's WebSocket endpoints, as a raw client sees them (the lead's proxy and
/// browser tests tunnel to them).
@Suite struct DemoWebSocketTests {
    static func handshake(_ target: String, extra: [(String, String)] = []) -> String {
        var text = "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        text += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        for (name, value) in extra { text += "\(name): \(value)\r\n" }
        return text + "\r\n"
    }

    /// A masked client frame with a short payload.
    static func frame(_ opcode: UInt8, _ payload: [UInt8]) -> [UInt8] {
        let mask: [UInt8] = [1, 2, 3, 4]
        precondition(payload.count < 126)
        return [0x80 | opcode, 0x80 | UInt8(payload.count)] + mask
            + payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
    }

    /// One server frame: opcode with FIN, payload.
    static func readFrame(_ client: HTTPClient) throws -> (UInt8, [UInt8]) {
        let header = try client.read(exactly: 2)
        var length = Int(header[1] & 0x7F)
        if length == 126 {
            let bytes = try client.read(exactly: 2)
            length = Int(bytes[0]) << 8 | Int(bytes[1])
        } else if length == 127 {
            length = try client.read(exactly: 8).reduce(0) { $0 << 8 | Int($1) }
        }
        return (header[0], try client.read(exactly: length))
    }

    @Test func echoNegotiatesAndCloses() throws {
        let upstream = try Upstream()
        let client = HTTPClient(port: upstream.port)
        try client.send(
            Self.handshake(
                "/api/ws/echo",
                extra: [("Sec-WebSocket-Protocol", "first, second"), ("Sec-WebSocket-Extensions", "x-test")]))
        let head = try client.readHeadLines()
        #expect(head.first == "HTTP/1.1 101 Switching Protocols")
        #expect(head.contains("Sec-WebSocket-Protocol: first"))
        #expect(head.contains("Sec-WebSocket-Extensions: x-test"))
        #expect(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
        try client.send(Self.frame(0x1, Array("hi".utf8)))
        try client.send(Self.frame(0x9, Array("ping".utf8)))
        let echo = try Self.readFrame(client)
        #expect(echo.0 == 0x81)
        #expect(echo.1 == Array("hi".utf8))
        let pong = try Self.readFrame(client)
        #expect(pong.0 == 0x8A)
        #expect(pong.1 == Array("ping".utf8))
        try client.send(Self.frame(0x8, [0x03, 0xE8] + Array("ok".utf8)))
        let close = try Self.readFrame(client)
        #expect(close.0 == 0x88)
        #expect(close.1 == [0x03, 0xE8] + Array("ok".utf8))
        #expect(client.waitForClose())
        #expect(try upstream.receivedTargets() == ["/api/ws/echo"])
    }

    @Test func otherExtensionsAreNotAnswered() throws {
        let upstream = try Upstream()
        let client = HTTPClient(port: upstream.port)
        try client.send(Self.handshake("/ws/idle", extra: [("Sec-WebSocket-Extensions", "permessage-deflate")]))
        let head = try client.readHeadLines()
        #expect(head.first == "HTTP/1.1 101 Switching Protocols")
        #expect(!head.contains { $0.lowercased().hasPrefix("sec-websocket-extensions") })
        #expect(!head.contains { $0.lowercased().hasPrefix("sec-websocket-protocol") })
    }

    @Test func pushCloseAndRefuse() throws {
        let upstream = try Upstream()
        let push = HTTPClient(port: upstream.port)
        try push.send(Self.handshake("/ws/push/100000"))
        #expect(try push.readHeadLines().first == "HTTP/1.1 101 Switching Protocols")
        var payload: [UInt8] = []
        var sizes: [Int] = []
        while payload.count < 100_000 {
            let (opcode, bytes) = try Self.readFrame(push)
            #expect(opcode == 0x82)
            sizes.append(bytes.count)
            payload += bytes
        }
        #expect(sizes == [65536, 100_000 - 65536])
        #expect(payload == (0..<100_000).map { UInt8($0 % 251) })

        let close = HTTPClient(port: upstream.port)
        try close.send(Self.handshake("/api/public/ws/close/4002"))
        #expect(try close.readHeadLines().first == "HTTP/1.1 101 Switching Protocols")
        let frame = try Self.readFrame(close)
        #expect(frame.0 == 0x88)
        #expect(frame.1 == [0x0F, 0xA2] + Array("bye".utf8))
        try close.send(Self.frame(0x8, [0x0F, 0xA2]))
        #expect(close.waitForClose())

        let refuse = HTTPClient(port: upstream.port)
        try refuse.send(Self.handshake("/ws/refuse"))
        let response = try refuse.readResponse()
        #expect(response.status == 403)
        #expect(response.bodyText == "{\"error\":\"websocket_refused\"}\n")
        let plain = try HTTPClient(port: upstream.port).request("GET", "/ws/echo")
        #expect(plain.status == 400)
        #expect(
            try upstream.receivedTargets() == [
                "/ws/push/100000", "/api/public/ws/close/4002", "/ws/refuse", "/ws/echo",
            ])
    }
}
