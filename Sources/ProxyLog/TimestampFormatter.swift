#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// RFC 3339 UTC timestamps with milliseconds (`2026-12-06T01:23:07.123Z`). The text up to
/// and including the seconds' `.` is cached and rebuilt once a second, so a line pays for
/// three digits, not for a calendar conversion.
package struct TimestampFormatter: Sendable {
    /// The second `prefix` was built for.
    private var cachedSecond: Int64 = .min
    /// `YYYY-MM-DDTHH:MM:SS.` (20 bytes) in 24 bytes of storage.
    private var prefix: (UInt64, UInt64, UInt64) = (0, 0, 0)
    private static let prefixLength = 20

    package init() {}

    /// The wall clock now: seconds and nanoseconds since 1970 (UTC).
    package static func now() -> (seconds: Int64, nanoseconds: Int) {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return (Int64(spec.tv_sec), Int(spec.tv_nsec))
    }

    /// Appends the current time.
    package mutating func appendNow(to buffer: LineBuffer) {
        let (seconds, nanoseconds) = Self.now()
        append(seconds: seconds, nanoseconds: nanoseconds, to: buffer)
    }

    /// Appends the time `seconds` (since 1970, UTC) plus `nanoseconds`, to the millisecond
    /// (rounded down, so a line never claims a later millisecond than it was written in).
    package mutating func append(seconds: Int64, nanoseconds: Int, to buffer: LineBuffer) {
        if seconds != cachedSecond { rebuild(seconds) }
        withUnsafeBytes(of: &prefix) { raw in
            buffer.append(UnsafeBufferPointer(rebasing: raw.bindMemory(to: UInt8.self)[0..<Self.prefixLength]))
        }
        let millis = min(max(nanoseconds, 0) / 1_000_000, 999)
        buffer.append(UInt8(ascii: "0") &+ UInt8(millis / 100))
        buffer.appendTwoDigits(millis % 100)
        buffer.append(UInt8(ascii: "Z"))
    }

    private mutating func rebuild(_ seconds: Int64) {
        cachedSecond = seconds
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = Int(seconds - days * 86_400)
        let (year, month, day) = Self.civil(daysSince1970: days)
        let scratch = LineBuffer(capacity: 32)
        let clampedYear = min(max(year, 0), 9999)
        scratch.appendTwoDigits(Int(clampedYear / 100))
        scratch.appendTwoDigits(Int(clampedYear % 100))
        scratch.append(UInt8(ascii: "-"))
        scratch.appendTwoDigits(month)
        scratch.append(UInt8(ascii: "-"))
        scratch.appendTwoDigits(day)
        scratch.append(UInt8(ascii: "T"))
        scratch.appendTwoDigits(secondOfDay / 3600)
        scratch.append(UInt8(ascii: ":"))
        scratch.appendTwoDigits(secondOfDay / 60 % 60)
        scratch.append(UInt8(ascii: ":"))
        scratch.appendTwoDigits(secondOfDay % 60)
        scratch.append(UInt8(ascii: "."))
        withUnsafeMutableBytes(of: &prefix) { raw in
            scratch.withUnsafeBytes { raw.copyMemory(from: UnsafeRawBufferPointer($0)) }
        }
    }

    /// Year, month (1-12) and day (1-31) of a day count since 1970-01-01 (proleptic
    /// Gregorian; Howard Hinnant's `civil_from_days`).
    static func civil(daysSince1970 days: Int64) -> (year: Int64, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = Int(dayOfYear - (153 * monthIndex + 2) / 5 + 1)
        let month = Int(monthIndex < 10 ? monthIndex + 3 : monthIndex - 9)
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }
}
