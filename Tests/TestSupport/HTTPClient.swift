import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A response as the client saw it: exact header lines, in order.
package struct HTTPResponse {
    package var status: Int
    /// The status line's reason phrase, as sent.
    package var reason = ""
    package var headers: [(name: String, value: String)]
    package var body: [UInt8]

    package init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    package var bodyText: String { String(decoding: body, as: UTF8.self) }

    /// Every value of `name` (case-insensitive).
    package func values(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    package func value(_ name: String) -> String? { values(name).first }

    /// The header lines whose name starts with `Access-Control-`, as `Name: value`.
    package var corsHeaders: [String] {
        headers.filter { $0.name.lowercased().hasPrefix("access-control-") }.map { "\($0.name): \($0.value)" }
    }
}

package struct ConnectionClosed: Error, CustomStringConvertible {
    package var afterBytes: Int
    package var description: String { "connection closed after \(afterBytes) bytes" }
}

/// A blocking HTTP/1.1 client over one TCP connection to 127.0.0.1, for exact
/// control of what is sent (malformed heads, pipelining) and what came back.
package final class HTTPClient {
    package let port: Int
    private var fd: Int32 = -1
    private var pending: [UInt8] = []
    package var timeoutSeconds: Int

    package init(port: Int, timeoutSeconds: Int = 15) {
        self.port = port
        self.timeoutSeconds = timeoutSeconds
    }

    deinit { close() }

    package func connect() throws {
        guard fd < 0 else { return }
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            Glibc.close(s)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .ECONNREFUSED)
        }
        fd = s
        pending = []
    }

    package func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    package var isOpen: Bool { fd >= 0 }

    /// Half-closes the connection (FIN to the server); reading stays possible.
    package func shutdownWrite() {
        if fd >= 0 { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }
    }

    /// Sends what it can: a server that refuses a request may close before it has all of it.
    /// Returns the number of bytes sent.
    @discardableResult
    package func sendAllowingClose(_ bytes: [UInt8]) -> Int {
        guard (try? connect()) != nil else { return 0 }
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { break }
            offset += n
        }
        return offset
    }

    package func send(_ bytes: [UInt8]) throws {
        try connect()
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EPIPE) }
            offset += n
        }
    }

    package func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Reads more bytes; false at EOF.
    private func fill() throws -> Bool {
        var buf = [UInt8](repeating: 0, count: 65536)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n == 0 { return false }
        if n < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK { throw TestTimeout(what: "a response from port \(port)") }
            if errno == ECONNRESET { return false }
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        pending.append(contentsOf: buf[0..<n])
        return true
    }

    private func readLine() throws -> String {
        while true {
            if let i = pending.firstIndex(of: 0x0A) {
                var line = Array(pending[0..<i])
                if line.last == 0x0D { line.removeLast() }
                pending.removeFirst(i + 1)
                return String(decoding: line, as: UTF8.self)
            }
            guard try fill() else { throw ConnectionClosed(afterBytes: pending.count) }
        }
    }

    private func readExactly(_ n: Int, into body: inout [UInt8]) throws {
        var need = n
        while need > 0 {
            if pending.isEmpty { guard try fill() else { throw ConnectionClosed(afterBytes: body.count) } }
            let take = min(need, pending.count)
            body.append(contentsOf: pending[0..<take])
            pending.removeFirst(take)
            need -= take
        }
    }

    /// Reads one response (skipping 1xx); `head` for a response to HEAD.
    /// `discardBody` counts body bytes without keeping them (large downloads).
    package func readResponse(head: Bool = false, sink: ((ArraySlice<UInt8>) -> Void)? = nil) throws -> HTTPResponse {
        while true {
            let statusLine = try readLine()
            let parts = statusLine.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, let status = Int(parts[1]) else {
                throw TestTimeout(what: "a status line, got \(statusLine)")
            }
            let reason = parts.count > 2 ? String(parts[2]) : ""
            var headers: [(name: String, value: String)] = []
            while true {
                let line = try readLine()
                if line.isEmpty { break }
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers.append(
                    (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
            }
            if (100..<200).contains(status) { continue }
            var response = HTTPResponse(status: status, headers: headers, body: [])
            response.reason = reason
            if head || status == 204 || status == 304 { return response }
            var body: [UInt8] = []
            func deliver() {
                if let sink {
                    sink(body[...])
                    body.removeAll(keepingCapacity: true)
                }
            }
            if response.value("Transfer-Encoding")?.lowercased() == "chunked" {
                while true {
                    let sizeLine = try readLine()
                    guard let size = Int(sizeLine.split(separator: ";").first ?? "", radix: 16) else {
                        throw TestTimeout(what: "a chunk size, got \(sizeLine)")
                    }
                    if size == 0 {
                        while try readLine() != "" {}
                        break
                    }
                    var remaining = size
                    while remaining > 0 {
                        let step = min(remaining, 1 << 20)
                        try readExactly(step, into: &body)
                        remaining -= step
                        deliver()
                    }
                    _ = try readLine()
                }
            } else if let length = response.value("Content-Length").flatMap({ Int($0) }) {
                var remaining = length
                while remaining > 0 {
                    let step = min(remaining, 1 << 20)
                    try readExactly(step, into: &body)
                    remaining -= step
                    deliver()
                }
            } else {
                // Close-delimited: what arrived with the head is body too.
                body.append(contentsOf: pending)
                pending.removeAll()
                while try fill() {
                    body.append(contentsOf: pending)
                    pending.removeAll()
                    deliver()
                }
                close()
            }
            response.body = body
            return response
        }
    }

    /// Sends one request and reads its response.
    package func request(
        _ method: String, _ target: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
        host: String = "127.0.0.1"
    ) throws -> HTTPResponse {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: \(host)\r\n"
        for (n, v) in headers { text += "\(n): \(v)\r\n" }
        if let body { text += "Content-Length: \(body.count)\r\n" }
        text += "\r\n"
        try send(Array(text.utf8) + (body ?? []))
        return try readResponse(head: method == "HEAD")
    }

    /// Reads exactly `n` bytes (what follows a 101, say).
    package func read(exactly n: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        try readExactly(n, into: &out)
        return out
    }

    /// Reads one head up to its blank line, a 1xx too: the status line, then each header line.
    package func readHeadLines() throws -> [String] {
        var lines: [String] = []
        while true {
            let line = try readLine()
            if line.isEmpty { return lines }
            lines.append(line)
        }
    }

    /// True when the server closed the connection (EOF) within the timeout.
    package func waitForClose() -> Bool {
        do {
            while try fill() { pending.removeAll() }
            return true
        } catch {
            return false
        }
    }
}
