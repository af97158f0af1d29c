// The browser tests' processes (the demo upstream with its site, the proxy) and a one-shot
// HTTP client; process handling itself is TestSupport's `ChildProcess`.

import Foundation
import TestSupport

#if canImport(Glibc)
    import Glibc
#endif

typealias BrowserTestFailure = TestFailure

/// demo-upstream with its site listener: the API and the static pages, both on free ports.
final class DemoUpstream: @unchecked Sendable {
    let process: ChildProcess
    let apiPort: Int
    let sitePort: Int

    init(siteDirectory: String) throws {
        process = try ChildProcess(
            "demo-upstream",
            [
                "--listen", "127.0.0.1:0", "--site-listen", "127.0.0.1:0", "--site-dir", siteDirectory,
                "--threads", "1", "--quiet",
            ])
        let api = try process.waitForLine("listening line") { $0.hasPrefix("listening on ") }
        let site = try process.waitForLine("site listening line") { $0.hasPrefix("site listening on ") }
        guard let apiPort = Int(api.split(separator: ":").last ?? ""),
            let sitePort = Int(site.split(separator: ":").last ?? "")
        else { throw BrowserTestFailure("no ports in \(api) / \(site)") }
        self.apiPort = apiPort
        self.sitePort = sitePort
    }
}

/// `cors-proxy serve` with `conf` (which must have `listen 127.0.0.1:0` and `admin 127.0.0.1:0`).
final class ProxyProcess: @unchecked Sendable {
    let process: ChildProcess
    let port: Int
    let adminPort: Int

    init(conf: String, directory: URL) throws {
        let path = directory.appendingPathComponent("proxy.conf").path
        try conf.write(toFile: path, atomically: true, encoding: .utf8)
        process = try ChildProcess("cors-proxy", ["serve", "--config", path])
        let line = try process.waitForLine("listening line") {
            $0.contains(" listening") && !$0.contains("admin listening") && $0.contains("port=")
        }
        let admin = try process.waitForLine("admin listening line") { $0.contains("admin listening") }
        func number(after marker: String, in text: String) -> Int? {
            guard let range = text.range(of: marker, options: .backwards) else { return nil }
            return Int(text[range.upperBound...].prefix { $0.isNumber })
        }
        guard let port = number(after: "port=", in: line), let adminPort = number(after: ":", in: admin) else {
            throw BrowserTestFailure("no ports in \(line) / \(admin)")
        }
        self.port = port
        self.adminPort = adminPort
    }
}

struct SimpleResponse {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: Data

    func value(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// One request on its own connection to 127.0.0.1:`port` (`Connection: close`, read to EOF),
/// with the target sent exactly as given. Bounded by socket timeouts.
func httpRequest(
    port: Int, _ method: String, _ target: String, headers: [(String, String)] = [], timeoutSeconds: Int = 10
) throws -> SimpleResponse {
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard s >= 0 else { throw BrowserTestFailure("socket: errno \(errno)") }
    defer { close(s) }
    var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard rc == 0 else { throw BrowserTestFailure("connect to 127.0.0.1:\(port): errno \(errno)") }
    var text = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
    for (name, value) in headers { text += "\(name): \(value)\r\n" }
    text += "\r\n"
    let request = Array(text.utf8)
    var sent = 0
    while sent < request.count {
        let n = request[sent...].withUnsafeBytes { send(s, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard n > 0 else { throw BrowserTestFailure("send to 127.0.0.1:\(port): errno \(errno)") }
        sent += n
    }
    // Read the head, then the body by Content-Length, by chunks, or to EOF.
    var received = Data()
    var eof = false
    func fill() throws {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(s, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                received.append(contentsOf: buffer[0..<n])
                return
            }
            if n == 0 {
                eof = true
                return
            }
            if errno == EINTR { continue }
            throw BrowserTestFailure(
                "reading from 127.0.0.1:\(port) for \(method) \(target): errno \(errno) (timeout?)")
        }
    }
    let separator = Data("\r\n\r\n".utf8)
    while received.range(of: separator) == nil, !eof { try fill() }
    guard let end = received.range(of: separator) else {
        throw BrowserTestFailure("no response head from 127.0.0.1:\(port) for \(method) \(target)")
    }
    let head = String(decoding: received[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
    let statusParts = head[0].split(separator: " ")
    guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
        throw BrowserTestFailure("bad status line \(head[0])")
    }
    let fields: [(name: String, value: String)] = head.dropFirst().compactMap { line in
        guard let colon = line.firstIndex(of: ":") else { return nil }
        return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
    }
    func field(_ name: String) -> String? { fields.first { $0.name.lowercased() == name }?.value }
    let bodyStart = end.upperBound
    var body: Data
    if method == "HEAD" || status == 204 || status == 304 {
        body = Data()
    } else if field("transfer-encoding")?.lowercased() == "chunked" {
        while received[bodyStart...].range(of: Data("0\r\n\r\n".utf8)) == nil, !eof { try fill() }
        body = dechunk(Data(received[bodyStart...]))
    } else if let length = field("content-length").flatMap({ Int($0) }) {
        while received.count - bodyStart < length, !eof { try fill() }
        body = Data(received[bodyStart...].prefix(length))
    } else {
        while !eof { try fill() }
        body = Data(received[bodyStart...])
    }
    return SimpleResponse(status: status, headers: fields, body: body)
}

private func dechunk(_ data: Data) -> Data {
    var out = Data()
    var rest = data[...]
    while let lineEnd = rest.range(of: Data("\r\n".utf8)) {
        let sizeText = String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
        guard let size = Int(sizeText, radix: 16), size > 0 else { break }
        let start = lineEnd.upperBound
        guard rest.distance(from: start, to: rest.endIndex) >= size else { break }
        let end = rest.index(start, offsetBy: size)
        out.append(rest[start..<end])
        rest = rest[end...].dropFirst(2)
    }
    return out
}
