import CORSPolicy
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ProxyConfig
import ProxyLog
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
    /// One line per request (docs/CONFIG.md, "Log lines").
    package let accessLog: AccessLog
    package let scheme: Scheme
    private let drainingFlag = Atomic<Bool>(false)

    package init(
        configuration: ProxyConfiguration, transport: any UpstreamTransport, metrics: ProxyMetrics, logger: Logger,
        accessLog: AccessLog, scheme: Scheme = .http
    ) {
        self.current = NIOLockedValueBox(ServingConfig(configuration, metrics: metrics))
        self.transport = transport
        self.metrics = metrics
        self.logger = logger
        self.accessLog = accessLog
        self.scheme = scheme
    }

    /// The conf for a new request.
    package var config: ServingConfig { current.withLockedValue { $0 } }

    /// Installs a new conf; requests in flight keep the one they started with. Its
    /// `log_format` applies to the lines written from now on.
    package func replaceConfig(_ configuration: ProxyConfiguration) {
        let config = ServingConfig(configuration, metrics: metrics)
        current.withLockedValue { $0 = config }
        accessLog.output.setFormat(LogFormat(configuration.logFormat))
    }

    package var isDraining: Bool { drainingFlag.load(ordering: .relaxed) }
    package func startDraining() { drainingFlag.store(true, ordering: .relaxed) }
}
