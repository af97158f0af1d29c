import ArgumentParser
import CurlBridge
import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import Prometheus
import ProxyConfig
import ProxyLog
import ProxyServer
import ServiceLifecycle

/// `--log-level`: swift-log's levels, parsed by name (a wrapper rather than a retroactive
/// conformance of `Logger.Level`, which another package could also declare).
struct LogLevelArgument: ExpressibleByArgument, Sendable {
    let level: Logger.Level

    init(_ level: Logger.Level) { self.level = level }

    init?(argument: String) {
        guard let level = Logger.Level(rawValue: argument) else { return nil }
        self.level = level
    }

    static var allValueStrings: [String] { Logger.Level.allCases.map(\.rawValue) }
    var defaultValueDescription: String { level.rawValue }
}

/// `cors-proxy serve`: the proxy itself.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the proxy (the default command). SIGTERM/SIGINT drain, SIGHUP reloads the conf.")

    @OptionGroup var options: ConfigOptions

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = LogLevelArgument(.info)

    @Option(help: "Event loop threads (default: one per CPU the process may use, as nproc counts them).")
    var eventLoops: Int?

    @Option(help: "curl worker threads (default: one per CPU the process may use).")
    var curlWorkers: Int?

    func run() async throws {
        // The conf first: its errors are diagnostics on stderr, and its log_format shapes
        // every line from here on.
        let checked = options.loadChecked()
        let result = checked.result
        printDiagnostics(result.errors)
        guard let configuration = result.configuration, result.errors.isEmpty else {
            throw ExitCode(1)
        }
        adoptProcessNice()  // the log writer thread inherits it
        let output = LogOutput(format: LogFormat(configuration.logFormat), level: logLevel.level)
        // The last lines reach stderr before the process exits, however it exits.
        defer { output.close() }
        LoggingSystem.bootstrap { label in ProxyLogHandler(label: label, output: output) }
        let logger = Logger(label: "cors-proxy")
        for warning in result.warnings {
            logger.warning("conf warning", metadata: ["event": "conf_warning", "diagnostic": "\(warning)"])
        }
        if let limit = SystemIO.raiseOpenFileLimit() {
            logger.debug(
                "open file limit",
                metadata: ["event": "nofile", "before": "\(limit.before)", "after": "\(limit.after)"])
        }

        let registry = PrometheusCollectorRegistry()
        let metrics = ProxyMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let cores = AvailableCores.count
        adoptProcessNice()  // the event loop threads inherit it
        let group = MultiThreadedEventLoopGroup(numberOfThreads: eventLoops ?? cores)
        let outcome = await serve(
            configuration, tlsContext: checked.serverTLSContext, group: group, metrics: metrics, registry: registry,
            curlWorkers: curlWorkers ?? cores, output: output, logger: logger)
        // Only now: every service, and what it held (server channels, connections), was
        // released inside `serve`, and some of them complete promises on the group's loops as
        // they go. Shutting the loops down first made every SIGTERM end with NIO's "Cannot
        // schedule tasks on an EventLoop that has already shut down".
        try? await group.shutdownGracefully()
        // The loops' last request lines go before "stopped".
        output.handOffLoopBuffers()
        switch outcome {
        case .stopped:
            logger.info("stopped", metadata: ["event": "stopped"])
        case .failedToStart(let error):
            output.flush()  // whatever was logged comes before the error
            SystemIO.writeError("cors-proxy: error: \(error)\n")
            throw ExitCode(1)
        case .failed(let error):
            logger.error("stopped with an error", metadata: ["event": "stopped", "error": "\(error)"])
            throw ExitCode(1)
        }
    }

    private enum Outcome {
        case stopped
        case failedToStart(any Error)
        case failed(any Error)
    }

    /// Binds, serves until SIGTERM/SIGINT, drains. Everything it creates is released when it
    /// returns, while `group` still runs.
    private func serve(
        _ configuration: ProxyConfiguration, tlsContext: NIOSSLContext?, group: MultiThreadedEventLoopGroup,
        metrics: ProxyMetrics, registry: PrometheusCollectorRegistry, curlWorkers: Int, output: LogOutput,
        logger: Logger
    ) async -> Outcome {
        // Idle upstream connections are dropped after 4 s: below the common 5 s
        // keep-alive of Node and Apache upstreams, so a pooled connection the
        // upstream already closed is never picked for a request with a body.
        let curl = CurlWorkerPool(logger: logger, workerCount: curlWorkers, maxConnectionIdleSeconds: 4)
        let context = ServerContext(
            configuration: configuration, tlsContext: tlsContext, transport: curl, metrics: metrics, logger: logger,
            accessLog: AccessLog(output: output, eventLoops: group))

        var services: [any Service] = [CurlService(pool: curl)]
        do {
            if let admin = configuration.admin {
                services.append(
                    try await AdminService(
                        address: admin, context: context, group: group,
                        renderMetrics: { registry.emitToBuffer() }))
            }
            let options = self.options
            services.append(ReloadService(context: context, load: { options.loadChecked() }))
            services.append(
                try await ProxyListenerService(
                    context: context,
                    addresses: configuration.listen,
                    group: group,
                    drainTimeout: .milliseconds(configuration.drainTimeoutMilliseconds)))
        } catch {
            return .failedToStart(error)
        }

        // Started in this order, stopped in reverse: the listener drains first
        // (/readyz 503 meanwhile), the admin listener and curl stop last.
        let serviceGroup = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await serviceGroup.run()
            return .stopped
        } catch {
            return .failed(error)
        }
    }
}

/// Runs the curl workers for the life of the service group.
struct CurlService: Service {
    let pool: CurlWorkerPool

    func run() async throws {
        adoptProcessNice()  // the curl worker threads inherit it
        pool.start()
        try? await gracefulShutdown()
        pool.shutdown()
    }
}
