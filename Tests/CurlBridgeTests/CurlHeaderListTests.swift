import CCurl
import HeaderFields
import Testing

@testable import CurlBridge

/// The header list curl is given: what it says is exactly what the upstream receives
/// (curl sends each node as a line and adds its own headers only where no blank stops it).
struct CurlHeaderListTests {
    /// The list's lines, in order; the list is freed.
    private func lines(_ headers: [HeaderField], blankExpect: Bool = true) throws -> [String] {
        let list = try #require(CurlHeaderList.make(headers, blankExpect: blankExpect))
        defer { CurlHeaderList.free(list) }
        var out: [String] = []
        var node: UnsafeMutablePointer<curl_slist>? = list
        while let current = node {
            out.append(String(cString: current.pointee.data))
            node = current.pointee.next
        }
        return out
    }

    @Test func headersPassInOrderWithBlanksForAcceptAndExpect() throws {
        let out = try lines([
            HeaderField("Host", "api:3000"), HeaderField("Cookie", "a=1"), HeaderField("Cookie", "b=2"),
        ])
        #expect(out == ["Host: api:3000", "Cookie: a=1", "Cookie: b=2", "Accept:", "Expect:"])
    }

    @Test func theClientsAcceptAndExpectAreKeptAndNotBlanked() throws {
        let out = try lines([HeaderField("accept", "*/*"), HeaderField("EXPECT", "x")])
        #expect(out == ["accept: */*", "EXPECT: x"])
    }

    @Test func noExpectBlankWithoutAnUpload() throws {
        #expect(try lines([HeaderField("Host", "h")], blankExpect: false) == ["Host: h", "Accept:"])
    }

    @Test func anEmptyValueIsSpelledWithASemicolon() throws {
        // `Name:` would tell curl to remove the header; `Name;` sends it empty.
        #expect(try lines([HeaderField("X-Empty", "")], blankExpect: false) == ["X-Empty;", "Accept:"])
    }

    @Test func framingHeadersAreLeftToCurl() throws {
        let out = try lines(
            [HeaderField("Content-Length", "3"), HeaderField("transfer-encoding", "chunked"), HeaderField("A", "1")],
            blankExpect: false)
        #expect(out == ["A: 1", "Accept:"])
    }

    @Test(arguments: ["a\rb", "a\nb", "a\u{0}b"])
    func aLineBreakOrNULDropsTheHeader(_ bad: String) throws {
        #expect(
            try lines([HeaderField("X-Bad", bad), HeaderField("X-Ok", "1")], blankExpect: false) == [
                "X-Ok: 1", "Accept:",
            ])
        #expect(
            try lines([HeaderField(bad, "v"), HeaderField("X-Ok", "1")], blankExpect: false) == ["X-Ok: 1", "Accept:"])
    }

    @Test func anEmptyNameIsDropped() throws {
        #expect(try lines([HeaderField("", "v")], blankExpect: false) == ["Accept:"])
    }

    @Test func nonASCIIValuesAreCopiedByteForByte() throws {
        #expect(try lines([HeaderField("X-Name", "Zoë ☕")], blankExpect: false) == ["X-Name: Zoë ☕", "Accept:"])
    }
}
