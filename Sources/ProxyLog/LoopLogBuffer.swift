import NIOCore
import Synchronization

/// One event loop's access-log lines between two hand-offs to the writer thread.
///
/// A request's line is rendered straight into this buffer on the loop that served it. The
/// first line of a loop tick schedules one hand-off at the end of that tick
/// (`eventLoop.execute` runs after the tick's I/O), so a busy loop passes the writer one
/// buffer per tick, not one line per request; a buffer over 32 KiB is handed off at once.
///
/// The lock is the loop's own (no other loop takes it): it is uncontended except when
/// the process flushes at exit, which can then take the last lines of a loop that has
/// already stopped.
package final class LoopLogBuffer: Sendable {
    /// Past this many bytes the buffer goes to the writer without waiting for the tick's end.
    package static let handOffThreshold = 32 * 1024

    private struct State {
        var buffer = LineBuffer(capacity: 4096)
        /// The empty buffer the writer handed back, rendered into after the next hand-off.
        var spare: LineBuffer?
        var lines = 0
        var handOffScheduled = false
        var clock = TimestampFormatter()
    }

    private let state = Mutex(State())
    private let eventLoop: any EventLoop
    private let writer: LogWriter
    private let format: FormatSetting

    init(eventLoop: any EventLoop, writer: LogWriter, format: FormatSetting) {
        self.eventLoop = eventLoop
        self.writer = writer
        self.format = format
    }

    /// Renders `record` into the buffer. Call it on the buffer's event loop.
    package func append(_ record: AccessRecord) {
        let format = self.format.value
        let (schedule, full) = state.withLock { state -> (Bool, Bool) in
            record.render(format, into: state.buffer, clock: &state.clock)
            state.lines += 1
            let schedule = !state.handOffScheduled
            state.handOffScheduled = true
            return (schedule, state.buffer.count >= Self.handOffThreshold)
        }
        if full {
            handOff()
        } else if schedule {
            eventLoop.execute { self.handOff() }
        }
    }

    /// Lines rendered and not yet handed to the writer.
    package var pendingLineCount: Int { state.withLock { $0.lines } }

    /// Passes the buffered lines to the writer.
    package func handOff() {
        let taken = state.withLock { state -> (LineBuffer, Int)? in
            state.handOffScheduled = false
            guard state.lines > 0 else { return nil }
            let lines = state.lines
            state.lines = 0
            let full = state.buffer
            state.buffer = state.spare ?? LineBuffer(capacity: 4096)
            state.spare = nil
            return (full, lines)
        }
        guard let (full, lines) = taken else { return }
        let empty = writer.submit(full, lines: lines)
        state.withLock { state in
            if state.spare == nil { state.spare = empty }
        }
    }
}

/// The current `log_format`, read once per line (a reload may change it).
final class FormatSetting: Sendable {
    private let raw: Atomic<UInt8>

    init(_ format: LogFormat) { raw = Atomic(format == .json ? 1 : 0) }

    var value: LogFormat { raw.load(ordering: .relaxed) == 1 ? .json : .text }

    func set(_ format: LogFormat) { raw.store(format == .json ? 1 : 0, ordering: .relaxed) }
}
