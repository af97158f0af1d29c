import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The optional second listener (`--site-listen HOST:PORT --site-dir PATH`): a static file
/// server for the demo page (`make run`) and the browser tests' pages, so that a page can be
/// served from an origin other than the proxy's.
///
/// GET/HEAD of regular files under the directory (`/` and `…/` mean `index.html`), with a
/// Content-Type by extension and `Cache-Control: no-store`; 404 for anything else, 405 for
/// other methods. No directory traversal: the path is percent-decoded once and refused (404)
/// when a segment is `.`, `..` or starts with `.` (dotfiles), when it holds a `\`, NUL or an
/// encoded `/`, or when the resolved file (symlinks followed) lies outside the directory.
struct SiteOptions: Sendable {
    var host = "127.0.0.1"
    var port = 5173
    /// The directory served, resolved (`realpath`) at start-up.
    var directory = ""
}

enum SiteFiles {
    /// Files larger than this are not served (the site is a handful of small files).
    static let maxFileSize = 16 << 20

    static func contentType(forPath path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? ""
        guard let dot = name.lastIndex(of: ".") else { return "application/octet-stream" }
        switch name[name.index(after: dot)...].lowercased() {
        case "html", "htm": return "text/html; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "json": return "application/json"
        case "png": return "image/png"
        case "svg": return "image/svg+xml"
        case "ico": return "image/x-icon"
        case "txt": return "text/plain; charset=utf-8"
        default: return "application/octet-stream"
        }
    }

    /// `realpath(3)`, or nil when the path does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The decoded, checked relative path (`a/b.html`) for a request target, or nil (404).
    static func relativePath(forTarget target: String) -> String? {
        let rawPath = Endpoint.path(of: target)
        guard rawPath.utf8.first == UInt8(ascii: "/") else { return nil }
        guard let decoded = percentDecode(rawPath) else { return nil }
        var segments: [Substring] = []
        for segment in decoded.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
            if segment.isEmpty { continue }  // `//` and the trailing `/`
            if segment.hasPrefix(".") { return nil }  // `.`, `..`, dotfiles
            if segment.contains("\\") { return nil }
            segments.append(segment)
        }
        var relative = segments.joined(separator: "/")
        if decoded.hasSuffix("/") {
            relative += relative.isEmpty ? "index.html" : "/index.html"
        }
        return relative.isEmpty ? nil : relative
    }

    /// Percent-decodes once. Nil for a malformed escape, an encoded `/` (it would hide a
    /// separator from the segment check), NUL or other control bytes, or invalid UTF-8.
    static func percentDecode(_ path: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(path.utf8.count)
        var iterator = path.utf8.makeIterator()
        func hexValue(_ c: UInt8?) -> UInt8? {
            guard let c else { return nil }
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        while let byte = iterator.next() {
            var value = byte
            if byte == UInt8(ascii: "%") {
                guard let high = hexValue(iterator.next()), let low = hexValue(iterator.next()) else { return nil }
                value = high << 4 | low
                if value == UInt8(ascii: "/") { return nil }
            }
            if value < 0x20 || value == 0x7F { return nil }
            bytes.append(value)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    enum Lookup {
        case file(ByteBuffer, contentType: String)
        case notFound
    }

    /// Reads the file for `target` (blocking: call it off the event loop).
    static func lookup(target: String, directory: String) -> Lookup {
        guard let relative = relativePath(forTarget: target) else { return .notFound }
        // Symlinks inside the directory are followed only when they stay inside it.
        guard let resolved = realPath(directory + "/" + relative),
            resolved.hasPrefix(directory == "/" ? "/" : directory + "/")
        else { return .notFound }
        let fd = open(resolved, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .notFound }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, Int(info.st_size) <= maxFileSize else {
            return .notFound
        }
        var buffer = ByteBufferAllocator().buffer(capacity: Int(info.st_size))
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .notFound
            }
            if n == 0 { break }
            buffer.writeBytes(chunk[0..<n])
            if buffer.readableBytes > maxFileSize { return .notFound }
        }
        return .file(buffer, contentType: contentType(forPath: relative))
    }
}

/// One per site connection, after NIO's HTTP/1.1 server pipeline (which serialises pipelined
/// requests). Files are read on the NIO thread pool.
final class SiteHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let directory: String
    private let verbose: Bool
    private var head: HTTPRequestHead?
    private var active = true

    init(directory: String, verbose: Bool) {
        self.directory = directory
        self.verbose = verbose
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head = self.head else { return }
            self.head = nil
            self.serve(context: context, head)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.active = false
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func serve(context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        if self.verbose {
            Console.err("site \(head.method.rawValue) \(head.uri)")
        }
        guard head.method == .GET || head.method == .HEAD else {
            self.respond(
                context: context, head, status: .methodNotAllowed, contentType: "text/plain; charset=utf-8",
                body: Self.text("method not allowed\n"), extra: [("Allow", "GET, HEAD")])
            return
        }
        let directory = self.directory
        let target = head.uri
        NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) {
            SiteFiles.lookup(target: target, directory: directory)
        }.assumeIsolated().whenComplete { result in
            guard self.active else { return }
            switch result {
            case .success(.file(let body, let contentType)):
                self.respond(context: context, head, status: .ok, contentType: contentType, body: body)
            case .success(.notFound), .failure:
                self.respond(
                    context: context, head, status: .notFound, contentType: "text/plain; charset=utf-8",
                    body: Self.text("not found\n"))
            }
        }
    }

    private static func text(_ s: String) -> ByteBuffer {
        ByteBufferAllocator().buffer(string: s)
    }

    private func respond(
        context: ChannelHandlerContext, _ request: HTTPRequestHead, status: HTTPResponseStatus,
        contentType: String, body: ByteBuffer, extra: [(String, String)] = []
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        for (name, value) in extra { headers.add(name: name, value: value) }
        let keepAlive = request.isKeepAlive
        if request.version.major == 1 && request.version.minor == 0 {
            if keepAlive { headers.add(name: "Connection", value: "keep-alive") }
        } else if !keepAlive {
            headers.add(name: "Connection", value: "close")
        }
        context.write(
            self.wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))),
            promise: nil)
        if request.method != .HEAD, body.readableBytes > 0 {
            context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let channel = context.channel
        let written = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
        if !keepAlive {
            written.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
