import Logging

/// The `log_format` of the conf: how every line the process writes while serving looks.
package enum LogFormat: String, Sendable, Hashable, CaseIterable {
    /// `TIME LEVEL EVENT key=value …` (logfmt-like), one line per event.
    case text
    /// One JSON object per line, the same keys.
    case json
}

extension Logger.Level {
    /// The level's name in a log line (`info`, `warning`, …).
    var lineName: StaticString {
        switch self {
        case .trace: return "trace"
        case .debug: return "debug"
        case .info: return "info"
        case .notice: return "notice"
        case .warning: return "warning"
        case .error: return "error"
        case .critical: return "critical"
        }
    }
}
