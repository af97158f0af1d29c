import Logging
import ProxyConfig
import ProxyTLS
import ServiceLifecycle
import UnixSignals

/// SIGHUP: re-read the conf. Invalid: log every error, keep serving the old one.
/// Valid: new requests use it; in-flight requests finish under the old one.
package final class ReloadService: Service, Sendable {
    private let context: ServerContext
    private let load: @Sendable () -> CheckedConf

    /// `load` reads and parses the conf file again, and reads and checks the TLS files it names
    /// (an unreadable or mismatched certificate and key refuse the whole reload).
    package init(context: ServerContext, load: @escaping @Sendable () -> CheckedConf) {
        self.context = context
        self.load = load
    }

    package func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            reload()
        }
    }

    /// One reload attempt; returns whether the new conf was installed.
    @discardableResult
    package func reload() -> Bool {
        let logger = context.logger
        let checked = load()
        let result = checked.result
        guard let configuration = result.configuration, result.errors.isEmpty else {
            for error in result.errors {
                logger.error(
                    "reload refused: conf error; still serving the previous conf",
                    metadata: ["event": "reload_refused", "diagnostic": "\(error)"])
            }
            context.metrics.reload(succeeded: false)
            return false
        }
        for warning in result.warnings {
            logger.warning("conf warning", metadata: ["event": "conf_warning", "diagnostic": "\(warning)"])
        }
        let old = context.config.configuration
        if old.listen != configuration.listen || old.admin != configuration.admin {
            logger.warning(
                "listen/admin addresses changed: restart the proxy to apply them", metadata: ["event": "restart_needed"]
            )
        }
        context.replaceConfig(configuration, tlsContext: checked.serverTLSContext)
        context.metrics.reload(succeeded: true)
        logger.info(
            "conf reloaded", metadata: ["event": "reload", "routes": "\(configuration.routes.matchOrder.count)"])
        return true
    }
}
