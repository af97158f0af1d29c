import ProxyLog
import Testing

@Suite struct TimestampTests {
    func stamp(_ clock: inout TimestampFormatter, _ seconds: Int64, _ nanoseconds: Int) -> String {
        let buffer = LineBuffer()
        clock.append(seconds: seconds, nanoseconds: nanoseconds, to: buffer)
        return buffer.text
    }

    /// The cached text up to the seconds is rebuilt when the second changes, not reused.
    @Test func acrossASecondBoundary() {
        var clock = TimestampFormatter()
        #expect(stamp(&clock, goldenSecond, 998_000_000) == "2026-12-06T01:23:07.998Z")
        #expect(stamp(&clock, goldenSecond, 999_999_999) == "2026-12-06T01:23:07.999Z")
        #expect(stamp(&clock, goldenSecond + 1, 0) == "2026-12-06T01:23:08.000Z")
        #expect(stamp(&clock, goldenSecond + 1, 7_000_000) == "2026-12-06T01:23:08.007Z")
        // Going back (a wall-clock step) rebuilds too.
        #expect(stamp(&clock, goldenSecond, 50_000_000) == "2026-12-06T01:23:07.050Z")
    }

    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (Int64(951_782_399), "2000-02-28T23:59:59.000Z"),
        (Int64(951_782_400), "2000-02-29T00:00:00.000Z"),
        (Int64(1_798_761_599), "2026-12-31T23:59:59.000Z"),
        (Int64(1_798_761_600), "2027-01-01T00:00:00.000Z"),
        (Int64(4_102_444_800), "2100-01-01T00:00:00.000Z"),
        (Int64(4_107_542_400), "2100-03-01T00:00:00.000Z"),
    ])
    func calendar(_ seconds: Int64, _ expected: String) {
        var clock = TimestampFormatter()
        #expect(stamp(&clock, seconds, 0) == expected)
    }

    @Test func nowIsNearTheSystemClock() {
        var clock = TimestampFormatter()
        let buffer = LineBuffer()
        clock.appendNow(to: buffer)
        #expect(buffer.count == 24)
        #expect(LogLineParserProbe.isTimestamp(buffer.text))
    }
}

/// The parser's timestamp shape check, reached through a parsed line.
enum LogLineParserProbe {
    static func isTimestamp(_ text: String) -> Bool {
        LogLineParser.parse("\(text) info probe") != nil
    }
}
