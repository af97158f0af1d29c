import HeaderFields
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Synchronization
import Upstream

/// N `CurlWorker`s behind one `UpstreamTransport`; each EventLoop is pinned to one worker
/// (first come, round-robin), so one loop's exchanges share that worker's connection cache.
package final class CurlWorkerPool: UpstreamTransport, Sendable {
    /// The workers, in assignment order.
    package let workers: [CurlWorker]
    private let assignment = NIOLockedValueBox<[ObjectIdentifier: Int]>([:])

    /// `workerCount` workers (at least one); the connection limits are split evenly between them.
    ///
    /// The limits are Envoy's default circuit breaker (1024 connections to a cluster): high
    /// enough that every client exchange in flight gets its own upstream connection, as nginx's
    /// `proxy_pass` does. With 64 per host, 512 busy clients queued in libcurl's pending list,
    /// and the wait showed as tail latency (p99 308 ms against 124 ms at 512 connections in
    /// docs/BENCHMARKS.md) for 3-5 MiB less RSS.
    package init(
        logger: Logger, workerCount: Int = System.coreCount, maxConnectionsPerHost: Int = 1024,
        maxTotalConnections: Int = 1024, maxConnectionIdleSeconds: Int = 50
    ) {
        let count = max(1, workerCount)
        let perHost = max(1, (maxConnectionsPerHost + count - 1) / count)
        let total = max(1, (maxTotalConnections + count - 1) / count)
        workers = (0..<count).map { index in
            var workerLogger = logger
            workerLogger[metadataKey: "curl.worker"] = "\(index)"
            return CurlWorker(
                logger: workerLogger, maxConnectionsPerHost: perHost, maxTotalConnections: total,
                maxConnectionIdleSeconds: maxConnectionIdleSeconds)
        }
    }

    /// Starts every worker thread.
    package func start() {
        for worker in workers { worker.start() }
    }

    /// Shuts every worker down (blocking; see `CurlWorker.shutdown()`).
    package func shutdown() {
        for worker in workers { worker.shutdown() }
    }

    /// The worker `eventLoop`'s exchanges run on.
    package func worker(for eventLoop: any EventLoop) -> CurlWorker {
        let key = ObjectIdentifier(eventLoop)
        let count = workers.count
        let index = assignment.withLockedValue { map in
            if let index = map[key] { return index }
            let index = map.count % count
            map[key] = index
            return index
        }
        return workers[index]
    }

    package func startTransfer(
        _ request: TransferRequest, on eventLoop: any EventLoop,
        handler: @escaping @Sendable (UpstreamEvent) -> Void
    ) -> any UpstreamTransfer {
        worker(for: eventLoop).startTransfer(request, on: eventLoop, handler: handler)
    }

    package func startTunnel(
        _ request: TunnelRequest, on eventLoop: any EventLoop,
        handler: @escaping @Sendable (UpstreamEvent) -> Void
    ) -> any UpstreamTransfer {
        worker(for: eventLoop).startTunnel(request, on: eventLoop, handler: handler)
    }
}
