import CurlBridge
import Testing

struct ChunkedDecoderTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var input: String
        /// The de-framed body, or the failure.
        var expect: Result<String, ChunkedDecoder.Failure>
        /// Bytes of `input` that belong to the body (the rest follows it).
        var bodyLength: Int? = nil
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "two chunks", input: "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", expect: .success("hello world")),
        Case(
            name: "hex sizes, both cases", input: "a\r\n0123456789\r\nB\r\nabcdefghijk\r\n0\r\n\r\n",
            expect: .success("0123456789abcdefghijk")),
        Case(name: "leading zeros", input: "0005\r\nhello\r\n000\r\n\r\n", expect: .success("hello")),
        Case(name: "extensions skipped", input: "5;name=\"v;x\"\r\nhello\r\n0;last\r\n\r\n", expect: .success("hello")),
        Case(name: "space before an extension", input: "5 ;x\r\nhello\r\n0\r\n\r\n", expect: .success("hello")),
        Case(name: "trailers skipped", input: "3\r\nabc\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\n", expect: .success("abc")),
        Case(name: "bare LF line ends", input: "3\nabc\n0\n\n", expect: .success("abc")),
        Case(name: "empty body", input: "0\r\n\r\n", expect: .success("")),
        Case(name: "CRLF inside data is data", input: "4\r\n\r\n\r\n\r\n0\r\n\r\n", expect: .success("\r\n\r\n")),
        Case(
            name: "bytes after the body are not consumed", input: "1\r\nx\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n",
            expect: .success("x"), bodyLength: 11),
        Case(name: "no digits", input: "\r\nhello\r\n", expect: .failure(.badChunkSize)),
        Case(name: "not hex", input: "5g\r\nhello\r\n0\r\n\r\n", expect: .failure(.badChunkSize)),
        Case(name: "sign", input: "-5\r\nhello\r\n", expect: .failure(.badChunkSize)),
        Case(name: "sixteen digits", input: "0000000000000001\r\nx\r\n", expect: .failure(.badChunkSize)),
        Case(name: "CR not followed by LF", input: "5\rhello\r\n", expect: .failure(.badChunkSize)),
        Case(name: "data longer than its size", input: "3\r\nabcd\r\n0\r\n\r\n", expect: .failure(.missingLineEnd)),
        Case(name: "final CR without LF", input: "0\r\n\rX", expect: .failure(.missingLineEnd)),
        Case(
            name: "endless extension",
            input: "5;" + String(repeating: "x", count: ChunkedDecoder.maxLineLength) + "\r\n",
            expect: .failure(.lineTooLong)),
        Case(
            name: "endless trailer",
            input: "0\r\nX: " + String(repeating: "x", count: ChunkedDecoder.maxLineLength) + "\r\n",
            expect: .failure(.lineTooLong)),
    ]

    /// Feeds `input` in pieces cut at `cuts`; returns the body, the bytes consumed and whether it completed.
    static func decode(_ input: [UInt8], cuts: [Int]) -> (Result<[UInt8], ChunkedDecoder.Failure>, Int, Bool) {
        var decoder = ChunkedDecoder()
        var body: [UInt8] = []
        var consumed = 0
        var start = 0
        for end in cuts + [input.count] where end >= start {
            let fed: Result<Int, ChunkedDecoder.Failure> = input[start..<end].withUnsafeBytes { bytes in
                Result { () throws(ChunkedDecoder.Failure) in try decoder.feed(bytes) { body.append(contentsOf: $0) } }
            }
            switch fed {
            case .failure(let failure):
                return (.failure(failure), consumed, false)
            case .success(let n):
                consumed += n
                if n < end - start { return (.success(body), consumed, decoder.isComplete) }
            }
            start = end
        }
        return (.success(body), consumed, decoder.isComplete)
    }

    @Test(arguments: cases)
    func wholeAndSplitAtEveryByte(_ c: Case) {
        let input = Array(c.input.utf8)
        var splits: [[Int]] = [[], Array(0..<input.count)]
        if input.count < 200 { splits += (1..<input.count).map { [$0] } }
        for cuts in splits {
            let (result, consumed, complete) = Self.decode(input, cuts: cuts)
            switch (c.expect, result) {
            case (.success(let expected), .success(let body)):
                #expect(body == Array(expected.utf8), "cuts \(cuts.count)")
                #expect(complete, "cuts \(cuts.count)")
                #expect(consumed == (c.bodyLength ?? input.count), "cuts \(cuts.count)")
            case (.failure(let expected), .failure(let failure)):
                #expect(failure == expected, "cuts \(cuts.count)")
            default:
                Issue.record("expected \(c.expect), got \(result) (cuts \(cuts.count))")
            }
        }
    }

    @Test func incompleteBodyIsNotComplete() {
        for input in ["5\r\nhel", "5\r\nhello\r\n", "0\r\n", "0\r\nX: 1\r\n", "5\r\nhello\r\n0\r\n\r"] {
            let (result, _, complete) = Self.decode(Array(input.utf8), cuts: [])
            #expect((try? result.get()) != nil, "\(input)")
            #expect(!complete, "\(input)")
        }
    }

    @Test func largeChunkInPieces() {
        let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 % 251) }
        let input = Array("493e0\r\n".utf8) + payload + Array("\r\n0\r\n\r\n".utf8)
        let (result, consumed, complete) = Self.decode(
            input, cuts: stride(from: 1000, to: input.count, by: 7919).map { $0 })
        #expect((try? result.get()) == payload)
        #expect(consumed == input.count)
        #expect(complete)
    }
}
