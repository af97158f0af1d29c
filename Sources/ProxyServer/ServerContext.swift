import CORSPolicy
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import ProxyConfig
import ProxyLog
import Synchronization
import Upstream

/// What every connection of a listener shares: the current conf and TLS context, the upstream
/// transport, metrics, the logger. Both are swapped atomically on SIGHUP; a request keeps the
/// conf it started with, and a connection the certificate it was handshaken with.
package final class ServerContext: Sendable {
    private let current: NIOLockedValueBox<ServingConfig>
    private let currentTLS: NIOLockedValueBox<NIOSSLContext?>
    package let transport: any UpstreamTransport
    package let metrics: ProxyMetrics
    package let logger: Logger
    /// One line per request (docs/CONFIG.md, "Log lines").
    package let accessLog: AccessLog
    private let drainingFlag = Atomic<Bool>(false)

    /// `tlsContext`: the TLS listeners' context, built from the conf's `tls { }` files (nil without one).
    package init(
        configuration: ProxyConfiguration, tlsContext: NIOSSLContext? = nil, transport: any UpstreamTransport,
        metrics: ProxyMetrics, logger: Logger, accessLog: AccessLog
    ) {
        self.current = NIOLockedValueBox(ServingConfig(configuration, metrics: metrics))
        self.currentTLS = NIOLockedValueBox(tlsContext)
        self.transport = transport
        self.metrics = metrics
        self.logger = logger
        self.accessLog = accessLog
    }

    /// The conf for a new request.
    package var config: ServingConfig { current.withLockedValue { $0 } }

    /// The TLS context for a new connection to a TLS listener.
    package var tlsContext: NIOSSLContext? { currentTLS.withLockedValue { $0 } }

    /// Installs a new conf (and TLS context: a rotated certificate reaches new connections);
    /// requests in flight keep the conf they started with. Its `log_format` applies to the
    /// lines written from now on.
    package func replaceConfig(_ configuration: ProxyConfiguration, tlsContext: NIOSSLContext? = nil) {
        let config = ServingConfig(configuration, metrics: metrics)
        current.withLockedValue { $0 = config }
        if let tlsContext { currentTLS.withLockedValue { $0 = tlsContext } }
        accessLog.output.setFormat(LogFormat(configuration.logFormat))
    }

    package var isDraining: Bool { drainingFlag.load(ordering: .relaxed) }
    package func startDraining() { drainingFlag.store(true, ordering: .relaxed) }
}
