import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A clean shutdown is clean: exit 0 and not one error line, idle or with requests in flight.
/// The proxy runs with `SWIFTNIO_STRICT=1`, which turns NIO's "Cannot schedule tasks on an
/// EventLoop that has already shut down" (printed at every SIGTERM before the service
/// order was fixed) into a crash, so the exit status catches it too.
@Suite(.serialized)
struct ShutdownTests {
    private static let strict = ["SWIFTNIO_STRICT": "1"]

    private func errorLines(_ output: [String]) -> [String] {
        output.filter { line in
            line.contains("ERROR") || line.contains(" error ") || line.contains("Fatal error")
                || line.contains("critical")
        }
    }

    @Test func sigtermWhileIdleExitsZeroWithoutAnErrorLine() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: standardConf(upstream: upstream.url, admin: true), environment: Self.strict)
        let r = try proxy.client().request("GET", "/api/items", headers: [("Origin", "https://app.example.com")])
        #expect(r.status == 200)
        proxy.process.signal(SIGTERM)
        #expect(try proxy.process.waitForExit() == 0)
        #expect(errorLines(proxy.process.output) == [])
        #expect(proxy.process.output.contains { $0.contains("stopped") })
    }

    @Test func sigtermUnderLoadExitsZeroWithoutAnErrorLine() throws {
        let upstream = try Upstream()
        let proxy = try Proxy(conf: standardConf(upstream: upstream.url, admin: true), environment: Self.strict)
        let port = proxy.port
        // Clients in a loop: short requests, slow ones, downloads and uploads, until the proxy goes.
        let stop = Atomic(false)
        let started = DispatchSemaphore(value: 0)
        let group = DispatchGroup()
        for worker in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                var first = true
                while !stop.load() {
                    let client = HTTPClient(port: port, timeoutSeconds: 5)
                    let target =
                        switch worker % 4 {
                        case 0: "/api/items"
                        case 1: "/api/slow/300"
                        case 2: "/api/bytes/262144"
                        default: "/api/echo/upload"
                        }
                    let body: [UInt8]? = worker % 4 == 3 ? Array(repeating: 0x61, count: 65536) : nil
                    _ = try? client.request(
                        body == nil ? "GET" : "POST", target, headers: [("Origin", "https://app.example.com")],
                        body: body)
                    client.close()
                    if first {
                        first = false
                        started.signal()
                    }
                }
            }
        }
        for _ in 0..<8 { _ = started.wait(timeout: .now() + 20) }
        proxy.process.signal(SIGTERM)
        let status = try proxy.process.waitForExit(timeout: 30)
        stop.store(true)
        _ = group.wait(timeout: .now() + 20)
        #expect(status == 0)
        #expect(errorLines(proxy.process.output) == [])
    }
}

/// A flag shared with the load threads.
private final class Atomic: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Bool
    init(_ value: Bool) { self.value = value }
    func load() -> Bool { lock.withLock { value } }
    func store(_ new: Bool) { lock.withLock { value = new } }
}
