import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import ProxyConfig
import ServiceLifecycle
import ServiceLifecycleTestKit
import TestSupport
import Testing

@testable import ProxyServer

/// The listener's drain, driven by ServiceLifecycle's graceful shutdown as `serve` drives it,
/// over a real socket on 127.0.0.1 with a fake upstream.
struct ProxyListenerServiceTests {
    @Test func gracefulShutdownFinishesInFlightRequestsWithConnectionCloseAndRefusesNewOnes() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loaded = ProxyConfig.load(text: ConnectionHarness.conf, path: "test.conf", environment: [:])
        let configuration = try #require(loaded.configuration)
        let upstream = FakeUpstream()
        var logger = Logger(label: "listener-test")
        logger.logLevel = .critical
        let server = ServerContext(
            configuration: configuration, transport: upstream,
            metrics: ProxyMetrics(factory: NOOPMetricsHandler.instance), logger: logger, accessLog: quietAccessLog)

        try await testGracefulShutdown { trigger in
            let service = try await ProxyListenerService(
                context: server, addresses: [ListenAddress(host: "127.0.0.1", port: 0)], group: group,
                drainTimeout: .seconds(10))
            let port = try #require(service.boundAddresses.first?.port)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await service.run() }

                // A request in flight (the fake upstream holds it), and an idle kept-alive connection.
                let busy = HTTPClient(port: port)
                try busy.send("GET /api/slow HTTP/1.1\r\nHost: p\r\n\r\n")
                let idle = HTTPClient(port: port)
                #expect(
                    try idle.request(
                        "OPTIONS", "/api/x",
                        headers: [
                            ("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "PUT"),
                        ]
                    ).status == 204)
                try await eventually { upstream.transfers.count == 1 }

                trigger.triggerGracefulShutdown()
                try await eventually { server.isDraining }
                #expect(idle.waitForClose(), "an idle connection is closed at once")
                // No new connection is accepted.
                #expect(throws: (any Error).self) { try HTTPClient(port: port).connect() }

                let transfer = upstream.transfers[0]
                transfer.eventLoop.execute {
                    transfer.head(200, [("Content-Length", "4")])
                    transfer.body("done")
                    transfer.deliver(.end)
                }
                let response = try busy.readResponse()
                #expect(response.status == 200)
                #expect(response.value("Connection") == "close")
                #expect(response.bodyText == "done")
                #expect(busy.waitForClose())
                // The service's run() returns once the last connection is gone.
                try await tasks.next()
            }
        }
        try await group.shutdownGracefully()
    }

    /// Polls `condition`. The bound is generous on purpose: `service.run()` is a task on the
    /// cooperative pool, which on a 2-core CI machine is shared with tests that block their
    /// thread on sockets, so the trigger can take seconds to reach it (a 10 s bound failed there).
    private func eventually(_ condition: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(60)
        while !condition() {
            guard Date() < deadline else { throw HarnessError("timed out waiting for a condition") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
