import CORSPolicy
import HeaderFields
import NIOCore

/// The seam between the transport-neutral `ExchangeDriver` and the protocol it runs on:
/// an HTTP/1.1 connection (`HTTP1ConnectionHandler`) or, later, an HTTP/2 stream. The driver
/// decides what is written and when; the transport decides how (status line and chunked
/// framing, or HEADERS and DATA frames) and what "close" means (the connection, or the stream).
///
/// Every method is called on the transport's event loop.
package protocol ExchangeTransport: AnyObject, SendableMetatype {
    var eventLoop: any EventLoop { get }
    var allocator: ByteBufferAllocator { get }
    /// The client's IP address, for `X-Forwarded-For` and the log.
    var clientAddress: String { get }
    /// The listener's scheme: same-origin detection and `X-Forwarded-Proto`.
    var scheme: Scheme { get }
    /// The client can take more response bytes now (the write buffer is under its high-water mark).
    var isWritable: Bool { get }

    /// Writes a whole response the proxy made: head, and `body` unless `omitBody` (a HEAD
    /// request). Returns the number of bytes written and, when the transport can replay
    /// them byte for byte (HTTP/1.1 keep-alive), the rendering, for the preflight cache.
    func writeLocalResponse(
        status: Int, headers: [HeaderField], body: String?, omitBody: Bool, after: ExchangeStateMachine.After
    )
        -> (bytes: Int, rendering: ByteBuffer?)
    /// Writes an allowed preflight's cached answer (`rendering` from `writeLocalResponse`).
    /// Returns the bytes written.
    func writeCachedResponse(_ entry: PreflightResponseCache.Entry) -> Int
    /// `100 Continue`, before the upstream is asked for the body.
    func writeContinue()
    /// The upstream's head, rewritten; `reason` is the upstream's reason phrase (may be empty).
    /// Returns the bytes written.
    func writeHead(
        status: Int, reason: String, headers: [HeaderField], framing: ExchangeStateMachine.ResponseFraming,
        close: Bool
    ) -> Int
    /// A part of the response body (framed by the transport).
    func writeBody(_ part: ByteBuffer)
    /// The response is complete: the framing's end, then `after`.
    func endResponse(after: ExchangeStateMachine.After)
    /// The response cannot be completed: the client must see it cut (HTTP/1.1: close the
    /// connection; HTTP/2: reset the stream).
    func abort()
    /// Close now (idle timeout, drain while idle, lingering over).
    func close()
    /// The last response is written: shut the write side and discard what the client sends.
    func startLingering()
    /// The driver's `shouldRead` may have changed: read more if the transport holds a read back.
    func readIfWanted()
}
