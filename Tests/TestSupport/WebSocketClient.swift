// A small WebSocket client (RFC 6455) for the process-level tests: the handshake as raw text,
// masked client frames, server frames decoded as they come (fragments, control frames between
// them), over any byte stream (a TCP socket here; IntegrationTests adds TLS). Written here
// rather than taken from NIO, so the proxy is checked against an independent implementation.

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The bytes a WebSocket client runs over. Blocking, each call bounded by the stream's timeout.
package protocol ByteStream: AnyObject {
    /// Writes all of `bytes`.
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Reads what is there into `buffer` (at least one byte); 0 at EOF.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Sends a FIN (TCP half-close); reading stays possible.
    func shutdownWrite()
    func close()
}

/// A TCP connection to 127.0.0.1, with receive and send timeouts.
package final class TCPStream: ByteStream {
    package let fd: Int32
    package let port: Int

    package init(port: Int, timeoutSeconds: Int = 15) throws {
        self.port = port
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EMFILE) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            let code = errno
            Glibc.close(s)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .ECONNREFUSED)
        }
        fd = s
    }

    private var closed = false

    package func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                if errno == EAGAIN || errno == EWOULDBLOCK { throw TestTimeout(what: "a send to port \(port)") }
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EPIPE)
            }
            offset += n
        }
    }

    package func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n >= 0 { return n }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: throw TestTimeout(what: "bytes from port \(port)")
            case ECONNRESET: return 0
            default: throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
        }
    }

    package func shutdownWrite() {
        if !closed { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }
    }

    package func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }

    deinit { close() }
}

/// One WebSocket frame as it crossed the wire.
package struct WebSocketFrame: Equatable, CustomStringConvertible {
    package var fin: Bool
    package var opcode: UInt8
    package var payload: [UInt8]
    /// A server frame must not be masked: the tests check this is false.
    package var masked = false

    package static let continuation: UInt8 = 0x0
    package static let text: UInt8 = 0x1
    package static let binary: UInt8 = 0x2
    package static let close: UInt8 = 0x8
    package static let ping: UInt8 = 0x9
    package static let pong: UInt8 = 0xA

    package init(fin: Bool = true, opcode: UInt8, payload: [UInt8], masked: Bool = false) {
        self.fin = fin
        self.opcode = opcode
        self.payload = payload
        self.masked = masked
    }

    package var text: String { String(decoding: payload, as: UTF8.self) }

    /// A Close frame's status code (nil when its payload is empty).
    package var closeCode: UInt16? {
        guard opcode == Self.close, payload.count >= 2 else { return nil }
        return UInt16(payload[0]) << 8 | UInt16(payload[1])
    }

    /// A Close frame's reason.
    package var closeReason: String {
        String(decoding: payload.dropFirst(2), as: UTF8.self)
    }

    package var description: String {
        "frame(fin: \(fin), opcode: \(opcode), \(payload.count) bytes\(masked ? ", masked" : ""))"
    }
}

/// The answer to a handshake: the status line and headers exactly as sent, and for an answer
/// that is not a 101, its body (by `Content-Length`).
package struct WebSocketHandshakeResponse {
    package var status: Int
    package var statusLine: String
    package var headers: [(name: String, value: String)]
    package var body: [UInt8] = []

    /// Every value of `name` (case-insensitive).
    package func values(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    package func value(_ name: String) -> String? { values(name).first }

    /// The header lines whose name starts with `Access-Control-`, as `Name: value`.
    package var corsHeaders: [String] {
        headers.filter { $0.name.lowercased().hasPrefix("access-control-") }.map { "\($0.name): \($0.value)" }
    }

    package var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// A WebSocket client over one `ByteStream`. Used by one thread at a time (a test may hand each
/// of many clients to its own thread).
package final class WebSocketClient: @unchecked Sendable {
    /// The key of every handshake, and the `Sec-WebSocket-Accept` it must be answered with (RFC 6455 §1.3).
    package static let key = "dGhlIHNhbXBsZSBub25jZQ=="
    package static let accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    package let stream: any ByteStream
    /// Bytes read and not yet used, from `start`.
    private var input: [UInt8] = []
    private var start = 0
    private var scratch = [UInt8](repeating: 0, count: 256 * 1024)

    package init(stream: any ByteStream) {
        self.stream = stream
    }

    /// A TCP connection to 127.0.0.1:`port`, and the handshake for `path`. The answer is returned
    /// whatever it is; `open` below wants a 101.
    package static func connect(
        port: Int, path: String, origin: String?, headers: [(String, String)] = [], timeoutSeconds: Int = 15
    ) throws -> (WebSocketClient, WebSocketHandshakeResponse) {
        let client = WebSocketClient(stream: try TCPStream(port: port, timeoutSeconds: timeoutSeconds))
        let response = try client.handshake(path: path, host: "127.0.0.1:\(port)", origin: origin, headers: headers)
        return (client, response)
    }

    /// `connect`, failing unless the answer is a 101 with the right `Sec-WebSocket-Accept`.
    package static func open(
        port: Int, path: String, origin: String?, headers: [(String, String)] = [], timeoutSeconds: Int = 15
    ) throws -> WebSocketClient {
        let (client, response) = try connect(
            port: port, path: path, origin: origin, headers: headers, timeoutSeconds: timeoutSeconds)
        try client.requireSwitched(response)
        return client
    }

    /// Throws unless `response` opened the socket.
    package func requireSwitched(_ response: WebSocketHandshakeResponse) throws {
        guard response.status == 101, response.value("Sec-WebSocket-Accept") == Self.accept else {
            throw TestFailure(
                "the handshake was answered \(response.statusLine), \(response.headers), \(response.bodyText)")
        }
    }

    /// The handshake text for `path` (a GET with `Upgrade: websocket`, `Connection: Upgrade`, the
    /// key and version 13, `Origin` when given, then `headers` as given).
    package static func handshakeText(
        path: String, host: String, origin: String?, headers: [(String, String)] = []
    ) -> String {
        var text = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        text += "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
        if let origin { text += "Origin: \(origin)\r\n" }
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        return text + "\r\n"
    }

    /// Sends the handshake and reads the answer (its head; for a non-101, its body too).
    package func handshake(
        path: String, host: String, origin: String?, headers: [(String, String)] = []
    ) throws -> WebSocketHandshakeResponse {
        try write(Array(Self.handshakeText(path: path, host: host, origin: origin, headers: headers).utf8))
        return try readHandshakeResponse()
    }

    /// Reads an HTTP/1.1 answer head (skipping interim 1xx other than 101), and a non-101's body.
    package func readHandshakeResponse() throws -> WebSocketHandshakeResponse {
        while true {
            let statusLine = try readLine()
            let parts = statusLine.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, let status = Int(parts[1]) else {
                throw TestFailure("not a status line: \(statusLine)")
            }
            var headers: [(name: String, value: String)] = []
            while true {
                let line = try readLine()
                if line.isEmpty { break }
                guard let colon = line.firstIndex(of: ":") else { throw TestFailure("not a header line: \(line)") }
                headers.append(
                    (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
            }
            if status != 101 && (100..<200).contains(status) { continue }
            var response = WebSocketHandshakeResponse(status: status, statusLine: statusLine, headers: headers)
            if status != 101, let length = response.value("Content-Length").flatMap({ Int($0) }) {
                response.body = try read(exactly: length)
            }
            return response
        }
    }

    // MARK: Sending

    package func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try stream.write($0) }
    }

    /// A masked client frame (RFC 6455 §5.2).
    package static func encode(
        _ opcode: UInt8, _ payload: [UInt8], fin: Bool = true,
        mask: (UInt8, UInt8, UInt8, UInt8) = (0x37, 0xfa, 0x21, 0x3d)
    ) -> [UInt8] {
        let n = payload.count
        var frame: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        if n < 126 {
            frame.append(0x80 | UInt8(n))
        } else if n <= 0xFFFF {
            frame += [0x80 | 126, UInt8(n >> 8), UInt8(n & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) {
                frame.append(UInt8((UInt64(n) >> UInt64(shift)) & 0xFF))
            }
        }
        frame += [mask.0, mask.1, mask.2, mask.3]
        let headerCount = frame.count
        frame += [UInt8](repeating: 0, count: n)
        // Eight bytes at a time: a 4 MiB message masked byte by byte is slow in a debug build.
        let word = UInt64(mask.0) | UInt64(mask.1) << 8 | UInt64(mask.2) << 16 | UInt64(mask.3) << 24
        let mask64 = word | word << 32
        let maskBytes = [mask.0, mask.1, mask.2, mask.3]
        frame.withUnsafeMutableBytes { target in
            payload.withUnsafeBytes { source in
                var i = 0
                while i + 8 <= n {
                    let value = source.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                    target.storeBytes(of: value ^ mask64, toByteOffset: headerCount + i, as: UInt64.self)
                    i += 8
                }
                while i < n {
                    target[headerCount + i] = source[i] ^ maskBytes[i & 3]
                    i += 1
                }
            }
        }
        return frame
    }

    package func send(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true) throws {
        try write(Self.encode(opcode, payload, fin: fin))
    }

    package func sendText(_ text: String) throws { try send(WebSocketFrame.text, Array(text.utf8)) }

    package func sendBinary(_ bytes: [UInt8]) throws { try send(WebSocketFrame.binary, bytes) }

    /// A Close frame with `code` and `reason`.
    package func sendClose(code: UInt16, reason: String = "") throws {
        try send(WebSocketFrame.close, [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8))
    }

    // MARK: Receiving

    /// Reads more bytes into `input`; false at EOF.
    private func fill() throws -> Bool {
        let n = try scratch.withUnsafeMutableBytes { try stream.read(into: $0) }
        guard n > 0 else { return false }
        if start > 0 && start >= input.count / 2 {
            input.removeFirst(start)
            start = 0
        }
        input.append(contentsOf: scratch[0..<n])
        return true
    }

    private var available: Int { input.count - start }

    private func ensure(_ count: Int) throws {
        while available < count {
            let before = available
            guard try fill() else { throw ConnectionClosed(afterBytes: before) }
        }
    }

    package func read(exactly count: Int) throws -> [UInt8] {
        try ensure(count)
        defer { start += count }
        return Array(input[start..<(start + count)])
    }

    private func readLine() throws -> String {
        while true {
            if let newline = input[start...].firstIndex(of: 0x0A) {
                var end = newline
                if end > start && input[end - 1] == 0x0D { end -= 1 }
                let line = String(decoding: input[start..<end], as: UTF8.self)
                start = newline + 1
                return line
            }
            guard try fill() else { throw ConnectionClosed(afterBytes: available) }
        }
    }

    /// The next frame from the server (throws `ConnectionClosed` at EOF).
    package func readFrame() throws -> WebSocketFrame {
        try ensure(2)
        let first = input[start]
        let second = input[start + 1]
        var length = Int(second & 0x7F)
        var headerLength = 2
        if length == 126 {
            try ensure(4)
            length = Int(input[start + 2]) << 8 | Int(input[start + 3])
            headerLength = 4
        } else if length == 127 {
            try ensure(10)
            length = input[(start + 2)..<(start + 10)].reduce(0) { $0 << 8 | Int($1) }
            headerLength = 10
        }
        let masked = second & 0x80 != 0
        if masked { headerLength += 4 }
        try ensure(headerLength + length)
        var payload = Array(input[(start + headerLength)..<(start + headerLength + length)])
        if masked {
            let key = Array(input[(start + headerLength - 4)..<(start + headerLength)])
            for i in payload.indices { payload[i] ^= key[i & 3] }
        }
        start += headerLength + length
        return WebSocketFrame(fin: first & 0x80 != 0, opcode: first & 0x0F, payload: payload, masked: masked)
    }

    /// The next data message: its opcode and its fragments' payloads joined. Control frames
    /// that come between (or before) are appended to `controls`.
    package func readMessage(controls: inout [WebSocketFrame]) throws -> (opcode: UInt8, payload: [UInt8]) {
        var opcode: UInt8?
        var payload: [UInt8] = []
        while true {
            let frame = try readFrame()
            if frame.opcode >= 0x8 {
                controls.append(frame)
                continue
            }
            if opcode == nil { opcode = frame.opcode }
            payload += frame.payload
            if frame.fin { return (opcode ?? 0, payload) }
        }
    }

    package func readMessage() throws -> (opcode: UInt8, payload: [UInt8]) {
        var controls: [WebSocketFrame] = []
        let message = try readMessage(controls: &controls)
        guard controls.isEmpty else { throw TestFailure("control frames before the message: \(controls)") }
        return message
    }

    /// Reads and drops whatever comes until EOF: true when the server closed within the timeout.
    package func waitForEOF() -> Bool {
        do {
            while try fill() { start = input.count }
            return true
        } catch {
            return false
        }
    }

    package func close() { stream.close() }
}
