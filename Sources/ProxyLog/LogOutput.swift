import Logging
import NIOCore
import Synchronization

/// Where everything the process logs while serving goes: the format and level, the writer
/// thread, and one line buffer per event loop.
///
/// Access lines go through `LoopLogBuffer`s (one per event loop, handed to the writer once
/// per loop tick); library and server messages, which are rare, go straight to the writer.
package final class LogOutput: Sendable {
    /// The least severe level written (`--log-level`).
    package let level: Logger.Level
    private let formatSetting: FormatSetting
    private let writer: LogWriter
    private let loopBuffers = Mutex<[LoopLogBuffer]>([])

    /// Starts the writer thread on `fileDescriptor` (stderr by default).
    package init(
        format: LogFormat, level: Logger.Level, fileDescriptor: Int32 = 2,
        queueLimit: Int = LogWriter.defaultQueueLimit
    ) {
        let formatSetting = FormatSetting(format)
        self.level = level
        self.formatSetting = formatSetting
        self.writer = LogWriter(fileDescriptor: fileDescriptor, queueLimit: queueLimit) { count in
            let buffer = LineBuffer(capacity: 256)
            var clock = TimestampFormatter()
            MessageLine.render(
                level: .warning, event: "log_dropped",
                message: "the log output could not keep up; lines were dropped",
                fields: [(key: "dropped", value: String(count))], format: formatSetting.value, into: buffer,
                clock: &clock)
            return buffer
        }
    }

    /// The current format.
    package var format: LogFormat { formatSetting.value }

    /// Changes the format of the lines rendered from now on (a reload's `log_format`).
    package func setFormat(_ format: LogFormat) { formatSetting.set(format) }

    /// Whether a line at `level` is written at all: callers check before building a record.
    @inline(__always)
    package func isEnabled(_ level: Logger.Level) -> Bool { level >= self.level }

    /// A new line buffer for `eventLoop`. Make one per loop and keep it: each is flushed at
    /// the end of its loop's ticks and by `flush`.
    package func makeLoopBuffer(for eventLoop: any EventLoop) -> LoopLogBuffer {
        let buffer = LoopLogBuffer(eventLoop: eventLoop, writer: writer, format: formatSetting)
        loopBuffers.withLock { $0.append(buffer) }
        return buffer
    }

    /// Writes one library or server message (from any thread).
    package func write(
        level: Logger.Level, event: String?, message: String, fields: [(key: String, value: String)]
    ) {
        guard isEnabled(level) else { return }
        let buffer = LineBuffer(capacity: 256)
        var clock = TimestampFormatter()
        MessageLine.render(
            level: level, event: event, message: message, fields: fields, format: format, into: buffer, clock: &clock)
        writer.submitLast(buffer, lines: 1)
    }

    /// Passes every loop's buffered lines to the writer now (rather than at its tick's end).
    package func handOffLoopBuffers() {
        for buffer in loopBuffers.withLock({ $0 }) { buffer.handOff() }
    }

    /// Hands off every loop's lines and waits until everything logged so far is written, at
    /// most `timeout` seconds; false when the output is stuck.
    @discardableResult
    package func flush(timeout: Double = 2) -> Bool {
        handOffLoopBuffers()
        return writer.flush(timeout: timeout)
    }

    /// Flushes, then stops the writer thread (at exit). Lines logged later are written in place.
    @discardableResult
    package func close(timeout: Double = 2) -> Bool {
        handOffLoopBuffers()
        return writer.close(timeout: timeout)
    }

    /// Lines dropped because the output could not keep up.
    package var droppedLineCount: Int { writer.droppedLineCount }
}
