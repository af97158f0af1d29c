import CCurl
import NIOCore

/// The worker thread's view of a WebSocket tunnel (`CurlTransfer.WorkerSide.tunnel`): where it
/// is in its life, its connection, and the bytes of the handshake and the answer's head.
struct TunnelState {
    enum Phase {
        /// curl is connecting (TCP, then TLS for an `https://` URL).
        case connecting
        /// Writing the handshake (what is left of it is in `handshake`).
        case sendingHandshake
        /// Reading the upstream's answer, up to the end of its head.
        case readingHead
        /// After a `101`: bytes pass both ways untouched until a side closes.
        case open
        /// After any other answer: its body, de-framed, then the end.
        case body(BodyFraming)
    }

    /// How the body of an answer that is not a `101` ends.
    enum BodyFraming {
        case length(remaining: UInt64)
        case chunked(ChunkedDecoder)
        case untilClose
    }

    /// Longest answer head accepted (curl's own limit for a response head).
    static let maxHeadBytes = 100 * 1024

    var phase = Phase.connecting
    /// The tunnel's own connection cache (a `CURLSH` sharing connections), so the multi's
    /// cache housekeeping never sees, counts or closes the tunnel's connection.
    var share: UnsafeMutableRawPointer?
    /// The connection's socket, once curl made it.
    var fd: Int32 = -1
    var handshake: ByteBuffer
    var head = ResponseHeadParser(switchingProtocolsIsFinal: true)
    /// The head line being read (a line may arrive in pieces).
    var headLine: [UInt8] = []
    var headBytes = 0
    /// What the socket is registered for in the worker's epoll set (`EPOLLIN`/`EPOLLOUT`).
    var interest: UInt32 = 0
    /// The client's end (`endBody`) was passed on: the socket's write side is shut.
    var writeShut = false

    init(handshake: ByteBuffer, share: UnsafeMutableRawPointer?) {
        self.handshake = handshake
        self.share = share
    }
}
