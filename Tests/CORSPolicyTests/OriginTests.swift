import Testing

@testable import CORSPolicy

struct OriginParseCase: CustomTestStringConvertible, Sendable {
    let text: String
    /// The normalised form, or nil when malformed.
    let expected: String?
    var testDescription: String { "\(text) -> \(expected ?? "malformed")" }
    init(_ text: String, _ expected: String?) {
        self.text = text
        self.expected = expected
    }
}

@Test(arguments: [
    OriginParseCase("https://app.example.com", "https://app.example.com"),
    OriginParseCase("HTTPS://App.Example.COM", "https://app.example.com"),
    OriginParseCase("https://h:", nil),
    OriginParseCase("https://h:0443", nil),
    OriginParseCase("https://h:0", nil),
    OriginParseCase("https://h:65536", nil),
    OriginParseCase("https://h:123456", nil),
    OriginParseCase("https://h:65535", "https://h:65535"),
    OriginParseCase("https://h:443", "https://h"),
    OriginParseCase("http://h:80", "http://h"),
    OriginParseCase("http://h:443", "http://h:443"),
    OriginParseCase("https://h:80", "https://h:80"),
    OriginParseCase("https://example.com.", nil),
    OriginParseCase("https://user@example.com", nil),
    OriginParseCase("https://user:pass@example.com", nil),
    OriginParseCase("https://example.com/", nil),
    OriginParseCase("https://example.com/path", nil),
    OriginParseCase("https://example.com?q", nil),
    OriginParseCase("https://example.com#f", nil),
    OriginParseCase("https://exa mple.com", nil),
    OriginParseCase("https://exämple.com", nil),
    OriginParseCase("https://", nil),
    OriginParseCase("https//example.com", nil),
    OriginParseCase("example.com", nil),
    OriginParseCase("null", nil),
    OriginParseCase("", nil),
    OriginParseCase("https://a..b", nil),
    // 253 characters is the longest DNS name (four labels of 63, 63, 63 and 61).
    OriginParseCase(
        "https://" + [63, 63, 63, 61].map { String(repeating: "a", count: $0) }.joined(separator: "."),
        "https://" + [63, 63, 63, 61].map { String(repeating: "a", count: $0) }.joined(separator: ".")),
    OriginParseCase(
        "https://" + [63, 63, 63, 62].map { String(repeating: "a", count: $0) }.joined(separator: "."), nil),
    OriginParseCase("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    OriginParseCase("http://256.0.0.1", nil),
    OriginParseCase("http://1.2.3", nil),
    OriginParseCase("http://1.2.3.4.5", nil),
    OriginParseCase("http://[::1]:8080", "http://[::1]:8080"),
    OriginParseCase("http://[::1]:80", "http://[::1]"),
    OriginParseCase("http://[0:0:0:0:0:0:0:1]", "http://[::1]"),
    OriginParseCase("http://[2001:DB8::0:1]", "http://[2001:db8::1]"),
    OriginParseCase("http://[2001:db8:0:0:1:0:0:1]", "http://[2001:db8::1:0:0:1]"),
    OriginParseCase("http://[::ffff:1.2.3.4]", "http://[::ffff:102:304]"),
    OriginParseCase("http://[::]", "http://[::]"),
    OriginParseCase("http://[:1::2]", nil),
    OriginParseCase("http://[1::2:]", nil),
    OriginParseCase("http://[1:::2]", nil),
    OriginParseCase("http://[1::2::3]", nil),
    OriginParseCase("http://[1:2:3:4:5:6:7:8:9]", nil),
    OriginParseCase("http://[12345::1]", nil),
    OriginParseCase("http://[::1", nil),
    OriginParseCase("http://::1", nil),
    OriginParseCase("chrome-extension://abcdefghijklmnop", "chrome-extension://abcdefghijklmnop"),
    OriginParseCase("chrome-extension://abc:443", "chrome-extension://abc:443"),
    OriginParseCase("wss://h:443", "wss://h"),
])
func originParsing(_ c: OriginParseCase) {
    #expect(Origin.parse(c.text)?.serialized == c.expected)
}

@Test func originErrorsSayWhatToWrite() {
    guard case .failure(let path) = Origin.parseDetailed("https://example.com/") else {
        Issue.record("trailing slash accepted")
        return
    }
    #expect(path.message == "an origin has no path, not even a trailing '/'; write https://example.com")
    guard case .failure(let user) = Origin.parseDetailed("https://u:p@example.com") else {
        Issue.record("userinfo accepted")
        return
    }
    #expect(user.message.contains("user name"))
}

struct EntryCase: CustomTestStringConvertible, Sendable {
    let text: String
    let expected: OriginEntry?
    var testDescription: String { text }
    init(_ text: String, _ expected: OriginEntry?) {
        self.text = text
        self.expected = expected
    }
}

@Test(arguments: [
    EntryCase("*", .any),
    EntryCase("null", .null),
    EntryCase("https://App.Example.com:443", .exact(Origin(scheme: "https", host: "app.example.com", port: nil))),
    EntryCase("https://*.example.com", .wildcard(scheme: "https", suffix: "example.com", port: nil)),
    EntryCase("https://*.Example.com:8443", .wildcard(scheme: "https", suffix: "example.com", port: 8443)),
    EntryCase("https://*.com", nil),
    EntryCase("https://api.*.example.com", nil),
    EntryCase("https://*example.com", nil),
    EntryCase("https://*.*.example.com", nil),
    EntryCase("https://*.example.com/", nil),
    EntryCase("https://*.1.2.3", nil),
    EntryCase("*.example.com", nil),
    EntryCase("~^https://pr-[0-9]+\\.example\\.com$", .regex("^https://pr-[0-9]+\\.example\\.com$")),
    EntryCase("~https://(unclosed", nil),
    EntryCase("~", nil),
    EntryCase("https://example.com/", nil),
    EntryCase("https://h:0443", nil),
])
func originEntryParsing(_ c: EntryCase) {
    switch OriginEntry.parse(c.text) {
    case .success(let entry): #expect(entry == c.expected)
    case .failure(let error): #expect(c.expected == nil, "\(error.message)")
    }
}

struct MatchCase: CustomTestStringConvertible, Sendable {
    let entry: String
    let origin: String
    let allowed: Bool
    var testDescription: String { "\(entry) vs \(origin)" }
    init(_ entry: String, _ origin: String, _ allowed: Bool) {
        self.entry = entry
        self.origin = origin
        self.allowed = allowed
    }
}

@Test(arguments: [
    MatchCase("https://*.example.com", "https://a.example.com", true),
    MatchCase("https://*.example.com", "https://a.b.example.com", true),
    MatchCase("https://*.example.com", "https://example.com", false),
    MatchCase("https://*.example.com", "https://evilexample.com", false),
    MatchCase("https://*.example.com", "https://example.com.evil.com", false),
    MatchCase("https://*.example.com", "https://a.example.com.evil.com", false),
    MatchCase("https://*.example.com", "http://a.example.com", false),
    MatchCase("https://*.example.com", "https://a.example.com:8443", false),
    MatchCase("https://*.example.com", "https://a.example.com:443", true),
    MatchCase("https://*.example.com", "https://A.EXAMPLE.COM", true),
    MatchCase("https://*.example.com:8443", "https://a.example.com:8443", true),
    MatchCase("https://*.example.com:8443", "https://a.example.com", false),
    MatchCase("https://*.example.com", "null", false),
    MatchCase("~.*", "null", false),
    MatchCase("~https://.*", "https://a.example.com", true),
    MatchCase("~example", "https://example.com", false),
    MatchCase("~https://pr-[0-9]+\\.example\\.com", "https://pr-12.example.com", true),
    MatchCase("~https://pr-[0-9]+\\.example\\.com", "https://pr-12.example.com.evil.com", false),
    MatchCase("~https://pr-[0-9]+\\.example\\.com", "https://PR-12.example.com", true),
    MatchCase("https://app.example.com", "https://app.example.com", true),
    MatchCase("https://app.example.com", "https://APP.example.com:443", true),
    MatchCase("https://app.example.com", "https://app.example.com:8443", false),
    MatchCase("https://app.example.com", "http://app.example.com", false),
    MatchCase("https://app.example.com", "https://app.example.com.", false),
    MatchCase("null", "null", true),
    MatchCase("null", "https://null", false),
    MatchCase("*", "null", true),
    MatchCase("*", "https://anything.test", true),
    MatchCase("*", "https://h:0443", false),
    MatchCase("*", "NULL", false),
    MatchCase("chrome-extension://abc", "chrome-extension://abc", true),
    MatchCase("http://[::1]:3000", "http://[0::1]:3000", true),
])
func originMatching(_ c: MatchCase) throws {
    var settings = CORSSettings()
    settings.allowOrigin = [try OriginEntry.parse(c.entry).get()]
    let policy = CompiledPolicy(settings: settings, routePattern: "/")
    let decision = policy.decide(.init(method: "GET", path: "/", origins: [c.origin]), selfOrigins: [])
    #expect(decision.summary.isAllowed == c.allowed, "\(decision.summary)")
}
