import Logging

/// The line of a library or server message ("listening", conf warnings, reload, NIO and
/// ServiceLifecycle messages): the same formats as the access log. The event is the
/// message's `event` metadata, else `log`; the text goes in `msg` (in text format only
/// when it differs from the event); other metadata follows as string fields sorted by key.
package enum MessageLine {
    /// Keys the line itself uses: metadata under these names gets a leading `_`.
    private static let reserved: Set<String> = ["time", "level", "event", "msg"]

    package static func render(
        level: Logger.Level, event: String?, message: String, fields: [(key: String, value: String)],
        format: LogFormat, into buffer: LineBuffer, clock: inout TimestampFormatter
    ) {
        let (seconds, nanoseconds) = TimestampFormatter.now()
        render(
            level: level, event: event, message: message, fields: fields, format: format, into: buffer,
            clock: &clock, seconds: seconds, nanoseconds: nanoseconds)
    }

    /// At a given time (tests use fixed times).
    package static func render(
        level: Logger.Level, event: String?, message: String, fields: [(key: String, value: String)],
        format: LogFormat, into buffer: LineBuffer, clock: inout TimestampFormatter, seconds: Int64, nanoseconds: Int
    ) {
        var line = FieldWriter(format: format, buffer: buffer)
        line.begin(clock: &clock, seconds: seconds, nanoseconds: nanoseconds, level: level)
        let eventName = (event?.isEmpty ?? true) ? "log" : event!
        line.event(dynamic: eventName)
        if format == .json || message != eventName {
            line.string(" msg=", "\",\"msg\":\"", message)
        }
        let written = fields.map { (key: reserved.contains($0.key) ? "_" + $0.key : $0.key, value: $0.value) }
        for (key, value) in written.sorted(by: { $0.key < $1.key }) {
            line.string(dynamicKey: key, value)
        }
        line.end()
    }
}
