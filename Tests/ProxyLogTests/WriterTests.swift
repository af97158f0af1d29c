import Foundation
import Logging
import NIOEmbedded
import ProxyLog
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct WriterTests {
    /// Several threads submitting at once: every line arrives whole, each thread's lines in
    /// the order it submitted them.
    @Test func linesFromManyThreadsNeverInterleave() throws {
        let file = TemporaryLogFile()
        let writer = LogWriter(fileDescriptor: file.fd) { _ in LineBuffer() }
        let threads = 4
        let rounds = 200
        let padding = String(repeating: "x", count: 300)
        let group = DispatchGroup()
        for thread in 0..<threads {
            DispatchQueue.global().async(group: group) {
                var buffer = LineBuffer()
                for round in 0..<rounds {
                    for line in 0..<5 {
                        buffer.appendRaw("t\(thread) \(round * 5 + line) \(padding)\n")
                    }
                    buffer = writer.submit(buffer, lines: 5)
                }
            }
        }
        #expect(group.wait(timeout: .now() + 30) == .success)
        #expect(writer.flush(timeout: 10))
        #expect(writer.close(timeout: 10))
        let lines = file.lines
        #expect(lines.count == threads * rounds * 5)
        var last = [Int](repeating: -1, count: threads)
        for line in lines {
            let parts = line.split(separator: " ")
            let thread = try #require(Int(parts[0].dropFirst()))
            let sequence = try #require(Int(parts[1]))
            #expect(parts.count == 3 && parts[2] == padding, "a torn line: \(line)")
            #expect(sequence == last[thread] + 1, "out of order: \(line)")
            last[thread] = sequence
        }
        #expect(writer.droppedLineCount == 0)
    }

    /// While the output is stuck (nobody reads the pipe), buffers beyond the queue bound are
    /// dropped and counted; once the writer catches up, one line says how many.
    @Test func dropsBeyondTheBoundAndSaysHowMany() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let (readEnd, writeEnd) = (fds[0], fds[1])
        defer { close(readEnd) }
        let writer = LogWriter(fileDescriptor: writeEnd, queueLimit: 100_000) { count in
            let notice = LineBuffer()
            notice.appendRaw("dropped \(count)\n")
            return notice
        }
        func chunk(_ byte: UInt8, _ size: Int, lines: Int) -> LineBuffer {
            let buffer = LineBuffer(capacity: size)
            let perLine = size / lines
            for _ in 0..<lines {
                for _ in 0..<(perLine - 1) { buffer.append(byte) }
                buffer.append(UInt8(ascii: "\n"))
            }
            return buffer
        }
        // 80,000 bytes: more than the pipe holds (64 KiB), so the writer blocks mid-write and
        // the bytes stay queued until someone reads.
        _ = writer.submit(chunk(UInt8(ascii: "a"), 80_000, lines: 8), lines: 8)
        _ = writer.submit(chunk(UInt8(ascii: "b"), 30_000, lines: 3), lines: 3)
        _ = writer.submit(chunk(UInt8(ascii: "c"), 30_000, lines: 3), lines: 3)
        #expect(writer.droppedLineCount == 6)

        // Read until the notice has arrived.
        var received: [UInt8] = []
        let notice = Array("dropped 6\n".utf8)
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(20)
        while received.count < 80_000 + notice.count && Date() < deadline {
            let n = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            received.append(contentsOf: buffer[0..<n])
        }
        #expect(received.count == 80_000 + notice.count)
        #expect(received.prefix(80_000).allSatisfy { $0 == UInt8(ascii: "a") || $0 == UInt8(ascii: "\n") })
        #expect(Array(received.suffix(notice.count)) == notice)

        // Caught up: later lines are written again, after the notice.
        _ = writer.submit(chunk(UInt8(ascii: "d"), 100, lines: 1), lines: 1)
        #expect(writer.flush(timeout: 10))
        let n = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
        #expect(n == 100)
        #expect(buffer[0..<99].allSatisfy { $0 == UInt8(ascii: "d") })
        #expect(writer.close(timeout: 10))
        close(writeEnd)
    }

    /// An event loop's lines wait in its buffer until the end of the loop tick, then go to
    /// the writer in one piece; a buffer past 32 KiB goes at once.
    @Test func loopBufferHandsOffAtTheEndOfTheTick() throws {
        let file = TemporaryLogFile()
        let output = LogOutput(format: .text, level: .info, fileDescriptor: file.fd)
        let loop = EmbeddedEventLoop()
        let buffer = output.makeLoopBuffer(for: loop)
        buffer.append(allowedGet())
        buffer.append(allowedGet())
        #expect(buffer.pendingLineCount == 2)
        loop.run()
        #expect(buffer.pendingLineCount == 0)
        #expect(output.flush(timeout: 10))
        #expect(file.lines.count == 2)

        var big = allowedGet()
        big.target = "/" + String(repeating: "t", count: 1000)
        var appended = 0
        while appended < 40 {
            buffer.append(big)
            appended += 1
            if buffer.pendingLineCount == 0 { break }
        }
        // Handed off as the line that took it past 32 KiB was added, with no loop tick.
        let lineLength = render(big, .text).utf8.count
        #expect(appended * lineLength >= LoopLogBuffer.handOffThreshold)
        #expect((appended - 1) * lineLength < LoopLogBuffer.handOffThreshold)
        #expect(output.flush(timeout: 10))
        #expect(file.lines.count == 2 + appended)
        #expect(output.close(timeout: 10))
        try loop.syncShutdownGracefully()
    }

    /// `log_format` is read per line: a reload switches the lines that follow.
    @Test func formatChangesApplyToNewLines() throws {
        let file = TemporaryLogFile()
        let output = LogOutput(format: .text, level: .info, fileDescriptor: file.fd)
        let loop = EmbeddedEventLoop()
        let buffer = output.makeLoopBuffer(for: loop)
        buffer.append(allowedGet())
        output.setFormat(.json)
        buffer.append(allowedGet())
        output.write(level: .info, event: "reload", message: "conf reloaded", fields: [])
        #expect(output.close(timeout: 10))
        let lines = file.lines
        #expect(lines.count == 3)
        #expect(lines.contains { $0.contains(" info access client=") })
        #expect(lines.filter { $0.hasPrefix("{\"time\":") }.count == 2)
        try loop.syncShutdownGracefully()
    }
}

@Suite struct HandlerTests {
    /// Library messages through swift-log: level filtering, event from metadata, `msg`,
    /// the handler's and the call's metadata merged and sorted.
    @Test func levelsEventsAndMetadata() throws {
        let file = TemporaryLogFile()
        let output = LogOutput(format: .text, level: .warning, fileDescriptor: file.fd)
        var logger = Logger(label: "cors-proxy") { ProxyLogHandler(label: $0, output: output) }
        #expect(logger.logLevel == .warning)
        logger[metadataKey: "client.address"] = "127.0.0.1"
        logger.info("not written", metadata: ["event": "access"])
        logger.debug("not written either")
        logger.warning(
            "conf warning", metadata: ["event": "conf_warning", "diagnostic": "proxy.conf:3:1: warning: x y"])
        logger.error("reload refused")
        output.write(level: .info, event: "x", message: "below the level", fields: [])
        #expect(output.close(timeout: 10))
        let lines = file.lines
        #expect(lines.count == 2, "\(lines)")
        let first = try #require(LogLineParser.parse(lines[0]))
        #expect(first.level == "warning")
        #expect(first.event == "conf_warning")
        #expect(first["msg"] == "conf warning")
        #expect(first["diagnostic"] == "proxy.conf:3:1: warning: x y")
        #expect(first["client.address"] == "127.0.0.1")
        #expect(
            lines[0].hasSuffix(
                #" conf_warning msg="conf warning" client.address=127.0.0.1 diagnostic="proxy.conf:3:1: warning: x y""#)
        )
        let second = try #require(LogLineParser.parse(lines[1]))
        #expect(second.event == "log")
        #expect(second.level == "error")
        #expect(second["msg"] == "reload refused")
    }
}
