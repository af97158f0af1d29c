import CORSPolicy
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ProxyConfig
import Synchronization
import Upstream

/// What every connection of a listener shares: the current conf, the upstream
/// transport, metrics, the logger. The conf is swapped atomically on SIGHUP;
/// a request keeps the snapshot it started with.
package final class ServerContext: Sendable {
    private let current: NIOLockedValueBox<ServingConfig>
    package let transport: any UpstreamTransport
    package let metrics: ProxyMetrics
    package let logger: Logger
    package let accessLog: AccessLog
    private let drainingFlag = Atomic<Bool>(false)

    package init(
        configuration: ProxyConfiguration, transport: any UpstreamTransport, metrics: ProxyMetrics, logger: Logger
    ) {
        self.current = NIOLockedValueBox(ServingConfig(configuration, metrics: metrics))
        self.transport = transport
        self.metrics = metrics
        self.logger = logger
        self.accessLog = AccessLog(logger: logger)
    }

    /// The conf for a new request.
    package var config: ServingConfig { current.withLockedValue { $0 } }

    /// Installs a new conf; requests in flight keep the one they started with.
    package func replaceConfig(_ configuration: ProxyConfiguration) {
        let config = ServingConfig(configuration, metrics: metrics)
        current.withLockedValue { $0 = config }
    }

    package var isDraining: Bool { drainingFlag.load(ordering: .relaxed) }
    package func startDraining() { drainingFlag.store(true, ordering: .relaxed) }
}
