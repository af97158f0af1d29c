import NIOCore
import NIOHTTP2

/// The HTTP/2 side of a TLS connection that negotiated `h2`: NIOHTTP2's connection handler with
/// the proxy's limits, one `HTTP2StreamHandler` per stream, and `HTTP2ConnectionManager` for the
/// connection's life (graceful shutdown, idle timeout).
enum HTTP2Connection {
    /// Served concurrently per connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    static let maxConcurrentStreams = 100
    /// SETTINGS_MAX_HEADER_LIST_SIZE, the hard bound NIOHTTP2 enforces while decoding (a
    /// CONTINUATION flood or an HPACK bomb ends there, with the connection). Lists between
    /// `HTTP2StreamHandler.maxHeaderListSize` (32 KiB) and this get a 431 on their stream only.
    static let headerListLimit = 64 * 1024

    /// Adds the HTTP/2 handlers to `channel`'s pipeline (on its event loop).
    static func configure(_ channel: any Channel, server: ServerContext) throws {
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: headerListLimit),
        ]
        // NIOHTTP2's defaults already cap resets at 200 per 30 s (rapid reset, CVE-2023-44487:
        // GOAWAY ENHANCE_YOUR_CALM), CONTINUATION frames, empty DATA frames, control-frame
        // floods and "glitches"; they are kept, and spelled out here so a change is visible.
        var stream = NIOHTTP2Handler.StreamConfiguration()
        stream.streamResetFrameRateLimit.maximumCount = 200
        stream.streamResetFrameRateLimit.windowLength = .seconds(30)
        let sync = channel.pipeline.syncOperations
        let manager = HTTP2ConnectionManager()
        let boundManager = NIOLoopBound(manager, eventLoop: channel.eventLoop)
        _ = try sync.configureHTTP2Pipeline(
            mode: .server, connectionConfiguration: connection, streamConfiguration: stream,
            streamDelegate: HTTP2ConnectionManager.StreamEvents(boundManager)
        ) { streamChannel in
            streamChannel.eventLoop.makeCompletedFuture {
                // A held request checks whether the connection failed in the read that brought it
                // (the 201st reset of a rapid reset ends the connection, not its stream).
                try streamChannel.pipeline.syncOperations.addHandler(
                    HTTP2StreamHandler(server: server, scheme: .https, connection: boundManager))
            }
        }
        try sync.addHandler(manager)
    }
}

/// The life of an HTTP/2 connection around its streams: on SIGTERM (`ChannelShouldQuiesceEvent`)
/// a GOAWAY (NO_ERROR) goes out at once, the streams already open finish (each one's driver
/// drains too), and the connection closes with its last stream; a connection without a stream
/// for 60 s is closed with a GOAWAY as well.
final class HTTP2ConnectionManager: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    static let idleTimeout = TimeAmount.seconds(60)

    private var openStreams = 0
    private var lastStreamID = HTTP2StreamID(0)
    private var draining = false
    /// NIOHTTP2 raised a connection error (and sent GOAWAY): the connection is closing, and a
    /// stream's request not yet started must not start. NIOSSL's close waits for the peer's
    /// close_notify, so the connection stays active meanwhile and cannot tell.
    private(set) var failed = false
    private var idleTimer: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    /// NIOHTTP2 tells its stream delegate, not the pipeline, when streams open and close.
    struct StreamEvents: NIOHTTP2StreamDelegate {
        let manager: NIOLoopBound<HTTP2ConnectionManager>
        init(_ manager: NIOLoopBound<HTTP2ConnectionManager>) { self.manager = manager }
        func streamCreated(_ id: HTTP2StreamID, channel: any Channel) { manager.value.streamCreated(id) }
        func streamClosed(_ id: HTTP2StreamID, channel: any Channel) { manager.value.streamClosed() }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        armIdleTimer(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        self.context = nil
    }

    private func streamCreated(_ id: HTTP2StreamID) {
        openStreams += 1
        if id > lastStreamID { lastStreamID = id }
        idleTimer?.cancel()
        idleTimer = nil
    }

    private func streamClosed() {
        openStreams -= 1
        guard openStreams == 0, let context else { return }
        if draining {
            // Not now: NIOHTTP2 reports the close while the stream's last frames are being
            // handed to the connection, before the stream flushes them; closing here dropped
            // the end of the response.
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.eventLoop.execute {
                bound.value.flush()
                bound.value.close(promise: nil)
            }
        } else {
            armIdleTimer(context: context)
        }
    }

    /// NIOHTTP2 reports a protocol error after acting on it: a stream error reset that stream
    /// (RST_STREAM) and the others go on; a connection error sent GOAWAY, and the connection is
    /// closed here, since a misbehaving peer would not close it. Logged at debug level only:
    /// a peer, not the proxy, is at fault.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if Self.isStreamError(error) { return }
        failed = true
        context.close(promise: nil)
    }

    /// The errors NIOHTTP2 raises for one stream (header validation, content-length checks, a
    /// stream over the concurrency limit). Anything else ends the connection: closing one that
    /// could have gone on is the safe mistake.
    static func isStreamError(_ error: any Error) -> Bool {
        switch error {
        case is NIOHTTP2Errors.InvalidHTTP2HeaderFieldName, is NIOHTTP2Errors.ForbiddenHeaderField,
            is NIOHTTP2Errors.MissingPseudoHeader, is NIOHTTP2Errors.DuplicatePseudoHeader,
            is NIOHTTP2Errors.PseudoHeaderAfterRegularHeader, is NIOHTTP2Errors.UnknownPseudoHeader,
            is NIOHTTP2Errors.UnsupportedPseudoHeader, is NIOHTTP2Errors.InvalidPseudoHeaders,
            is NIOHTTP2Errors.InvalidPseudoHeaderValue, is NIOHTTP2Errors.MissingHostHeader,
            is NIOHTTP2Errors.DuplicateHostHeader, is NIOHTTP2Errors.EmptyPathHeader,
            is NIOHTTP2Errors.TrailersWithoutEndStream, is NIOHTTP2Errors.ContentLengthViolated,
            is NIOHTTP2Errors.ContentLengthHeadersMismatch, is NIOHTTP2Errors.ContentLengthHeaderNegative,
            is NIOHTTP2Errors.ContentLengthHeaderMalformedValue, is NIOHTTP2Errors.MaxStreamsViolation,
            is NIOHTTP2Errors.StreamClosed, is NIOHTTP2Errors.NoSuchStream:
            return true
        default:
            return false
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent, !draining {
            draining = true
            goAway(context: context, closeWhenWritten: openStreams == 0)
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func goAway(context: ChannelHandlerContext, closeWhenWritten: Bool) {
        let frame = HTTP2Frame(
            streamID: .rootStream, payload: .goAway(lastStreamID: lastStreamID, errorCode: .noError, opaqueData: nil))
        let written = context.writeAndFlush(wrapOutboundOut(frame))
        if closeWhenWritten {
            written.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
        }
    }

    private func armIdleTimer(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(in: Self.idleTimeout) {
            let (handler, context) = bound.value
            handler.idleTimer = nil
            guard handler.openStreams == 0 else { return }
            handler.draining = true
            handler.goAway(context: context, closeWhenWritten: true)
        }
    }
}
