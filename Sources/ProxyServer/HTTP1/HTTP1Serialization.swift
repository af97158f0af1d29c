import HeaderFields
import NIOCore
import NIOHTTP1

/// Renders HTTP/1.1 response heads straight into a ByteBuffer (no intermediate HTTPHeaders).
package enum HTTP1Serialization {
    /// The standard reason phrase of `status` (RFC 9110's, as NIOHTTP1 knows them), for the
    /// responses the proxy makes itself and for an upstream that sent none.
    package static func standardReason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 204: return "No Content"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        // RFC 9110 renamed 413; NIOHTTP1 still says "Payload Too Large".
        case 413: return "Content Too Large"
        default: return HTTPResponseStatus(statusCode: status).reasonPhrase
        }
    }

    /// Writes `HTTP/1.1 STATUS REASON\r\n`. `reason` is the upstream's phrase; empty means the
    /// standard one. The statuses the proxy makes most come from static strings.
    package static func writeStatusLine(into buffer: inout ByteBuffer, status: Int, reason: String = "") {
        if reason.isEmpty {
            switch status {
            case 200: buffer.writeStaticString("HTTP/1.1 200 OK\r\n")
            case 204: buffer.writeStaticString("HTTP/1.1 204 No Content\r\n")
            case 403: buffer.writeStaticString("HTTP/1.1 403 Forbidden\r\n")
            case 404: buffer.writeStaticString("HTTP/1.1 404 Not Found\r\n")
            default: writeStatusLine(into: &buffer, status: status, phrase: standardReason(status))
            }
        } else {
            writeStatusLine(into: &buffer, status: status, phrase: reason)
        }
    }

    private static func writeStatusLine(into buffer: inout ByteBuffer, status: Int, phrase: String) {
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeString(String(status))
        buffer.writeStaticString(" ")
        buffer.writeString(phrase)
        buffer.writeStaticString("\r\n")
    }

    /// Writes one `Name: value` line.
    @inline(__always)
    package static func writeHeader(into buffer: inout ByteBuffer, _ name: String, _ value: String) {
        buffer.writeString(name)
        buffer.writeStaticString(": ")
        buffer.writeString(value)
        buffer.writeStaticString("\r\n")
    }

    /// Writes the status line, the headers and the blank line.
    package static func writeHead(
        into buffer: inout ByteBuffer, status: Int, reason: String = "", headers: [HeaderField]
    ) {
        writeStatusLine(into: &buffer, status: status, reason: reason)
        for header in headers { writeHeader(into: &buffer, header.name, header.value) }
        buffer.writeStaticString("\r\n")
    }
}
