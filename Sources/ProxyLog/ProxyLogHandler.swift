import Logging

/// swift-log's handler for everything the process logs besides the access lines
/// ("listening", conf warnings, reload, NIO and ServiceLifecycle messages): the same
/// format as the access log, through the same writer thread.
package struct ProxyLogHandler: LogHandler {
    private let output: LogOutput
    package var logLevel: Logger.Level
    package var metadata: Logger.Metadata = [:]
    package var metadataProvider: Logger.MetadataProvider?

    /// `label` is swift-log's logger label (not written: the event names the line).
    package init(label: String, output: LogOutput, metadataProvider: Logger.MetadataProvider? = nil) {
        self.output = output
        self.logLevel = output.level
        self.metadataProvider = metadataProvider
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let given = event.metadata { merged.merge(given) { _, new in new } }
        let name = merged.removeValue(forKey: "event").map { "\($0)" }
        var fields = merged.map { (key: $0.key, value: "\($0.value)") }
        if let error = event.error { fields.append((key: "error", value: "\(error)")) }
        output.write(level: event.level, event: name, message: event.message.description, fields: fields)
    }
}
