import HeaderFields
import NIOCore

/// Renders response heads straight into a ByteBuffer (no intermediate HTTPHeaders).
package enum ResponseWriter {
    package static func reason(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 206: return "Partial Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 413: return "Content Too Large"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        default: return "Status"
        }
    }

    /// Writes `HTTP/1.1 STATUS REASON\r\n`: the statuses the proxy makes itself come
    /// from static strings, others are rendered.
    package static func writeStatusLine(into buffer: inout ByteBuffer, status: Int) {
        switch status {
        case 200: buffer.writeStaticString("HTTP/1.1 200 OK\r\n")
        case 204: buffer.writeStaticString("HTTP/1.1 204 No Content\r\n")
        case 403: buffer.writeStaticString("HTTP/1.1 403 Forbidden\r\n")
        case 404: buffer.writeStaticString("HTTP/1.1 404 Not Found\r\n")
        default:
            buffer.writeStaticString("HTTP/1.1 ")
            buffer.writeString(String(status))
            buffer.writeStaticString(" ")
            buffer.writeString(reason(status))
            buffer.writeStaticString("\r\n")
        }
    }

    /// Writes one `Name: value` line.
    @inline(__always)
    package static func writeHeader(into buffer: inout ByteBuffer, _ name: String, _ value: String) {
        buffer.writeString(name)
        buffer.writeStaticString(": ")
        buffer.writeString(value)
        buffer.writeStaticString("\r\n")
    }

    /// Writes `HTTP/1.1 STATUS REASON`, the headers and the blank line.
    package static func writeHead(
        into buffer: inout ByteBuffer, status: Int, headers: [HeaderField]
    ) {
        writeStatusLine(into: &buffer, status: status)
        for header in headers {
            let (name, value) = (header.name, header.value)
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }

    /// A status with no body section at all (SPEC: 204 and 304 carry none).
    package static func statusForbidsBody(_ status: Int) -> Bool {
        status == 204 || status == 304 || (100..<200).contains(status)
    }
}
