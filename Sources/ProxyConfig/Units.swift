/// Conf value syntax: durations, sizes and switches (docs/CONFIG.md §2, "Value types").
enum Units {
    /// `250ms`, `30s`, `5m`, `1h`, or a bare integer of seconds, in milliseconds.
    static func milliseconds(_ text: String) -> Result<Int64, ValueError> {
        let hint = "write a duration like 250ms, 30s, 5m or 1h (a bare number is seconds)"
        let (digits, unit) = splitNumber(text)
        guard !digits.isEmpty, let number = Int64(digits) else {
            return .failure(ValueError("\(quoted(text)) is not a duration; \(hint)"))
        }
        let factor: Int64
        switch unit {
        case "", "s": factor = 1000
        case "ms": factor = 1
        case "m": factor = 60_000
        case "h": factor = 3_600_000
        default: return .failure(ValueError("\(quoted(text)) is not a duration; \(hint)"))
        }
        let (product, overflow) = number.multipliedReportingOverflow(by: factor)
        guard !overflow else { return .failure(ValueError("\(quoted(text)) is too long a duration")) }
        return .success(product)
    }

    /// `512`, `64k`, `10m`, `1g` (powers of 1024), in bytes.
    static func bytes(_ text: String) -> Result<Int64, ValueError> {
        let hint = "write a size like 512, 64k, 10m or 1g"
        let (digits, unit) = splitNumber(text)
        guard !digits.isEmpty, let number = Int64(digits) else {
            return .failure(ValueError("\(quoted(text)) is not a size; \(hint)"))
        }
        let factor: Int64
        switch unit {
        case "": factor = 1
        case "k", "K": factor = 1 << 10
        case "m", "M": factor = 1 << 20
        case "g", "G": factor = 1 << 30
        default: return .failure(ValueError("\(quoted(text)) is not a size; \(hint)"))
        }
        let (product, overflow) = number.multipliedReportingOverflow(by: factor)
        guard !overflow else { return .failure(ValueError("\(quoted(text)) is too large a size")) }
        return .success(product)
    }

    /// `on` / `off`.
    static func onOff(_ text: String, directive: String) -> Result<Bool, ValueError> {
        switch text {
        case "on": return .success(true)
        case "off": return .success(false)
        default: return .failure(ValueError("\(directive) takes on or off, not \(quoted(text))"))
        }
    }

    /// Leading ASCII digits and the rest.
    private static func splitNumber(_ text: String) -> (Substring, Substring) {
        let end = text.firstIndex { !($0.isASCII && $0.isNumber) } ?? text.endIndex
        // 19 digits is Int64's width; more is refused rather than wrapped.
        return (text[..<end].count <= 19 ? text[..<end] : "", text[end...])
    }

    /// A duration as `check` prints it, in the largest exact unit.
    static func formatDuration(_ milliseconds: Int64) -> String {
        if milliseconds != 0, milliseconds % 3_600_000 == 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds != 0, milliseconds % 60_000 == 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }

    /// A size as `check` prints it, in the largest exact unit.
    static func formatSize(_ bytes: Int64) -> String {
        if bytes != 0, bytes % (1 << 30) == 0 { return "\(bytes >> 30)g" }
        if bytes != 0, bytes % (1 << 20) == 0 { return "\(bytes >> 20)m" }
        if bytes != 0, bytes % (1 << 10) == 0 { return "\(bytes >> 10)k" }
        return "\(bytes)"
    }
}

/// Why a conf value is refused; the message says what to write instead.
struct ValueError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
