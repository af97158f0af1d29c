import NIOCore
import Testing
import Upstream

@testable import ProxyServer

/// The machine's table, row by row: events in, actions out, no sockets, time passed in.
struct ExchangeStateMachineTests {
    typealias Machine = ExchangeStateMachine
    typealias Shape = ExchangeStateMachine.RequestShape

    private let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private static let get = Shape(keepAlive: true, isHead: false, http10: false, body: .none, expectContinue: false)
    private static let closeGet = Shape(
        keepAlive: false, isHead: false, http10: false, body: .none, expectContinue: false)
    private static let head = Shape(keepAlive: true, isHead: true, http10: false, body: .none, expectContinue: false)
    private static let http10 = Shape(keepAlive: false, isHead: false, http10: true, body: .none, expectContinue: false)
    private static func post(_ body: Shape.Body, expectContinue: Bool = false) -> Shape {
        Shape(keepAlive: true, isHead: false, http10: false, body: body, expectContinue: expectContinue)
    }

    private func bytes(_ n: Int) -> ByteBuffer { ByteBuffer(repeating: 0x61, count: n) }

    /// A machine in `forwarding`, its request body complete, the upstream head written.
    private func streaming(_ shape: Shape = get, length: Int64? = 5) -> Machine {
        var m = Machine(now: t0)
        _ = m.receivedHead(shape, plan: .forward(bodyLimit: 0), now: t0)
        _ = m.upstreamHead(status: 200, contentLength: length)
        return m
    }

    // MARK: idle

    @Test func idleAcceptsAHeadAndReadsAndTimesOutAfterSixtySeconds() {
        var m = Machine(now: t0)
        #expect(m.acceptsNewRequest && m.shouldRead)
        #expect(m.timerDeadline == t0 + .seconds(60))
        #expect(m.timerFired(now: t0 + .seconds(59)) == .none)
        #expect(m.timerFired(now: t0 + .seconds(60)) == .close)
        #expect(m.isClosed)
    }

    @Test func aStartedHeadHasThirtySeconds() {
        var m = Machine(now: t0)
        m.headStarted(now: t0 + .seconds(10))
        #expect(m.timerDeadline == t0 + .seconds(40))
        m.headStarted(now: t0 + .seconds(20))  // more bytes of the same head: the clock does not restart
        #expect(m.timerDeadline == t0 + .seconds(40))
        #expect(m.timerFired(now: t0 + .seconds(40)) == .close)
    }

    @Test func localAnswersKeepAliveCloseOrLinger() {
        var keep = Machine(now: t0)
        #expect(keep.receivedHead(Self.get, plan: .answerLocally, now: t0 + .seconds(1)) == .answer(then: .keepAlive))
        #expect(keep.acceptsNewRequest)
        // The idle clock restarts from the answer.
        #expect(keep.timerDeadline == t0 + .seconds(61))

        var close = Machine(now: t0)
        #expect(close.receivedHead(Self.closeGet, plan: .answerLocally, now: t0) == .answer(then: .close))
        #expect(close.isClosed)

        // A body was announced and will not be read: answer, then discard what follows.
        var linger = Machine(now: t0)
        #expect(
            linger.receivedHead(Self.post(.length(10)), plan: .answerLocally, now: t0)
                == .answer(then: .lingerThenClose))
        #expect(linger.isDiscardingInput && linger.shouldRead && !linger.acceptsNewRequest)
    }

    @Test func aForwardedRequestStartsTheUpstreamWithContinueOnlyForABody() {
        var m = Machine(now: t0)
        #expect(
            m.receivedHead(Self.post(.length(5), expectContinue: true), plan: .forward(bodyLimit: 0), now: t0)
                == .startUpstream(sendContinue: true))
        var get = Machine(now: t0)
        #expect(
            get.receivedHead(Self.get, plan: .forward(bodyLimit: 0), now: t0) == .startUpstream(sendContinue: false))
        #expect(!get.acceptsNewRequest)
        #expect(get.timerDeadline == nil)
    }

    @Test func aDeclaredBodyOverTheLimitIsRefusedBeforeForwarding() {
        var m = Machine(now: t0)
        #expect(
            m.receivedHead(Self.post(.length(11)), plan: .forward(bodyLimit: 10), now: t0)
                == .respondWithError(status: 413, cancelUpstream: false, then: .lingerThenClose))
        #expect(m.isDiscardingInput)
        var inclusive = Machine(now: t0)
        #expect(
            inclusive.receivedHead(Self.post(.length(10)), plan: .forward(bodyLimit: 10), now: t0)
                == .startUpstream(sendContinue: false))
        #expect(inclusive.receivedBody(bytes(10), now: t0) == .sendBody(bytes(10)))
    }

    @Test func aMalformedHeadIsRefusedAndDiscarded() {
        var m = Machine(now: t0)
        #expect(
            m.receivedMalformed(status: 431, now: t0)
                == .respondWithError(status: 431, cancelUpstream: false, then: .lingerThenClose))
        #expect(m.isDiscardingInput)
    }

    @Test func drainWhileIdleClosesAtOnce() {
        var m = Machine(now: t0)
        #expect(m.drain() == .close)
        #expect(m.isClosed)
        #expect(m.drain() == .none)
    }

    // MARK: forwarding: the request side

    @Test func aStreamedBodyIsSentAndEnded() {
        var m = Machine(now: t0)
        _ = m.receivedHead(Self.post(.streamed), plan: .forward(bodyLimit: 0), now: t0)
        #expect(m.receivedBody(bytes(3), now: t0) == .sendBody(bytes(3)))
        #expect(m.receivedEnd() == .endBody)
    }

    @Test func backpressureStopsReadingAboveTheHighWaterMark() {
        var m = Machine(now: t0)
        _ = m.receivedHead(Self.post(.streamed), plan: .forward(bodyLimit: 0), now: t0)
        #expect(m.shouldRead)
        _ = m.receivedBody(bytes(Machine.requestBodyHighWater), now: t0)
        #expect(!m.shouldRead)
        // Held back by the proxy, the client is not slow: no body timer meanwhile.
        #expect(m.timerDeadline == nil)
        m.bodyConsumed(1, now: t0 + .seconds(100))
        #expect(m.shouldRead)
        // The body clock restarts when reading resumes.
        #expect(m.timerDeadline == t0 + .seconds(160))
    }

    @Test func aStreamedBodyOverTheLimit() {
        // Before the response head: 413, the transfer cancelled, the rest discarded.
        var before = Machine(now: t0)
        _ = before.receivedHead(Self.post(.streamed), plan: .forward(bodyLimit: 10), now: t0)
        #expect(before.receivedBody(bytes(6), now: t0) == .sendBody(bytes(6)))
        #expect(
            before.receivedBody(bytes(6), now: t0)
                == .respondWithError(status: 413, cancelUpstream: true, then: .lingerThenClose))
        // After it: only a cut is honest.
        var after = Machine(now: t0)
        _ = after.receivedHead(Self.post(.streamed), plan: .forward(bodyLimit: 10), now: t0)
        _ = after.upstreamHead(status: 200, contentLength: nil)
        #expect(
            after.receivedBody(bytes(11), now: t0)
                == .abort(cancelUpstream: true, status: 413, reason: .bodyOverLimitAfterHead))
        #expect(after.isClosed)
    }

    @Test func aMalformedBodyBeforeAndAfterTheHead() {
        var before = Machine(now: t0)
        _ = before.receivedHead(Self.post(.streamed), plan: .forward(bodyLimit: 0), now: t0)
        #expect(
            before.receivedMalformed(status: 400, now: t0)
                == .respondWithError(status: 400, cancelUpstream: true, then: .lingerThenClose))
        var after = Machine(now: t0)
        _ = after.receivedHead(Self.post(.streamed), plan: .forward(bodyLimit: 0), now: t0)
        _ = after.upstreamHead(status: 200, contentLength: nil)
        #expect(
            after.receivedMalformed(status: 400, now: t0)
                == .abort(cancelUpstream: true, status: 400, reason: .malformedBodyAfterHead))
    }

    @Test func aClientThatStopsSendingItsBodyTimesOut() {
        var waiting = Machine(now: t0)
        _ = waiting.receivedHead(Self.post(.streamed), plan: .forward(bodyLimit: 0), now: t0)
        _ = waiting.receivedBody(bytes(1), now: t0 + .seconds(5))
        #expect(waiting.timerDeadline == t0 + .seconds(65))
        #expect(waiting.timerFired(now: t0 + .seconds(64)) == .none)
        #expect(
            waiting.timerFired(now: t0 + .seconds(65))
                == .respondWithError(status: 408, cancelUpstream: true, then: .close))
        var started = Machine(now: t0)
        _ = started.receivedHead(Self.post(.streamed), plan: .forward(bodyLimit: 0), now: t0)
        _ = started.upstreamHead(status: 200, contentLength: nil)
        #expect(
            started.timerFired(now: t0 + .seconds(60))
                == .abort(cancelUpstream: true, status: 408, reason: .clientBodyTimeout))
    }

    @Test func theClientLeavingCancelsTheTransfer() {
        var m = Machine(now: t0)
        _ = m.receivedHead(Self.get, plan: .forward(bodyLimit: 0), now: t0)
        #expect(m.clientClosed() == .cancelUpstream)
        #expect(m.clientClosed() == .none)
        var mid = streaming()
        #expect(mid.clientClosed() == .cancelUpstream)
        var idle = Machine(now: t0)
        #expect(idle.clientClosed() == .none)
    }

    // MARK: forwarding: the response side

    @Test func framingRules() {
        func framing(_ shape: Shape, status: Int, length: Int64?) -> Machine.Action {
            var m = Machine(now: t0)
            _ = m.receivedHead(shape, plan: .forward(bodyLimit: 0), now: t0)
            return m.upstreamHead(status: status, contentLength: length)
        }
        #expect(framing(Self.get, status: 200, length: nil) == .writeHead(.chunked, close: false))
        #expect(framing(Self.get, status: 200, length: 10) == .writeHead(.length(10), close: false))
        #expect(framing(Self.get, status: 204, length: nil) == .writeHead(.none, close: false))
        #expect(framing(Self.get, status: 304, length: 10) == .writeHead(.none, close: false))
        #expect(framing(Self.head, status: 200, length: 10) == .writeHead(.none, close: false))
        #expect(framing(Self.http10, status: 200, length: nil) == .writeHead(.closeDelimited, close: true))
        #expect(framing(Self.closeGet, status: 200, length: 1) == .writeHead(.length(1), close: true))
    }

    @Test func aBodyTheClientMustNotGetIsDroppedWithItsCreditReturned() {
        var m = streaming(Self.head)
        #expect(m.upstreamBody(bytes(7)) == .dropBody(7))
        var get = streaming()
        #expect(get.upstreamBody(bytes(7)) == .writeBody(bytes(7)))
    }

    @Test func theEndKeepsAliveClosesOrLingers() {
        var keep = streaming()
        #expect(keep.upstreamEnd(now: t0 + .seconds(2)) == .endResponse(then: .keepAlive))
        #expect(keep.acceptsNewRequest)
        #expect(keep.timerDeadline == t0 + .seconds(62))

        var close = streaming(Self.closeGet)
        #expect(close.upstreamEnd(now: t0) == .endResponse(then: .close))
        #expect(close.isClosed)

        // The upstream answered before the request body was complete: discard the rest.
        var early = Machine(now: t0)
        _ = early.receivedHead(Self.post(.streamed), plan: .forward(bodyLimit: 0), now: t0)
        _ = early.upstreamHead(status: 200, contentLength: 0)
        #expect(early.upstreamEnd(now: t0) == .endResponse(then: .lingerThenClose))
    }

    @Test func upstreamFailuresBeforeTheHeadAreAnsweredAndAfterItCut() {
        var connect = Machine(now: t0)
        _ = connect.receivedHead(Self.get, plan: .forward(bodyLimit: 0), now: t0)
        #expect(
            connect.upstreamFailed(.connect, now: t0)
                == .respondWithError(status: 502, cancelUpstream: false, then: .keepAlive))
        #expect(connect.acceptsNewRequest)

        var timeout = Machine(now: t0)
        _ = timeout.receivedHead(Self.closeGet, plan: .forward(bodyLimit: 0), now: t0)
        #expect(
            timeout.upstreamFailed(.timeout, now: t0)
                == .respondWithError(status: 504, cancelUpstream: false, then: .close))

        var tls = Machine(now: t0)
        _ = tls.receivedHead(Self.post(.streamed), plan: .forward(bodyLimit: 0), now: t0)
        #expect(
            tls.upstreamFailed(.tls, now: t0)
                == .respondWithError(status: 502, cancelUpstream: false, then: .lingerThenClose))

        var after = streaming()
        #expect(
            after.upstreamFailed(.reset, now: t0)
                == .abort(cancelUpstream: false, status: 502, reason: .upstreamFailedAfterHead))
        #expect(after.isClosed)
    }

    @Test func drainDuringAnExchangeEndsItWithConnectionClose() {
        var m = Machine(now: t0)
        _ = m.receivedHead(Self.get, plan: .forward(bodyLimit: 0), now: t0)
        #expect(m.drain() == .none)
        #expect(m.upstreamHead(status: 200, contentLength: 1) == .writeHead(.length(1), close: true))
        #expect(m.upstreamEnd(now: t0) == .endResponse(then: .close))
        #expect(m.isClosed)
    }

    // MARK: closing (lingering close)

    private func lingering(at start: NIODeadline) -> Machine {
        var m = Machine(now: t0)
        _ = m.receivedHead(Self.post(.length(10)), plan: .answerLocally, now: t0)
        #expect(m.responseFlushed(now: start) == .startLingering)
        return m
    }

    @Test func lingeringEndsWhenTheClientIsQuietForASecond() {
        let start = t0 + .seconds(1)
        var m = lingering(at: start)
        #expect(m.timerDeadline == start + .seconds(1))
        #expect(m.discarded(100, now: start + .milliseconds(500)) == .none)
        #expect(m.timerDeadline == start + .milliseconds(1500))
        #expect(m.timerFired(now: start + .milliseconds(1500)) == .close)
    }

    @Test func lingeringStopsAtAMebibyteButNotBeforeASecond() {
        let start = t0
        var m = lingering(at: start)
        #expect(m.discarded(Machine.lingerBytes, now: start + .milliseconds(10)) == .none)
        #expect(m.timerDeadline == start + .seconds(1))
        #expect(m.discarded(10, now: start + .seconds(1)) == .close)
    }

    @Test func lingeringNeverExceedsFiveSeconds() {
        var m = lingering(at: t0)
        for step in 1...9 { _ = m.discarded(10, now: t0 + .milliseconds(Int64(step) * 500)) }
        #expect(m.timerDeadline == t0 + .seconds(5))
        #expect(m.timerFired(now: t0 + .seconds(5)) == .close)
    }

    @Test func bytesBeforeTheAnswerIsWrittenAreDiscardedAndTheWaitIsBounded() {
        var m = Machine(now: t0)
        _ = m.receivedHead(Self.post(.length(10)), plan: .answerLocally, now: t0)
        #expect(m.discarded(Machine.lingerBytes * 2, now: t0) == .none)
        #expect(m.timerDeadline == t0 + .seconds(5))
        #expect(m.timerFired(now: t0 + .seconds(5)) == .close)
    }

    @Test func theClientClosingEndsLingering() {
        var m = lingering(at: t0)
        #expect(m.clientClosed() == .none)
        #expect(m.isClosed)
        // A flush reported after the client left changes nothing.
        #expect(m.responseFlushed(now: t0) == .none)
    }

    // MARK: closed

    @Test func lateEventsAfterCloseAreIgnored() {
        var m = Machine(now: t0)
        _ = m.drain()
        #expect(m.clientClosed() == .none)
        #expect(m.drain() == .none)
        #expect(m.timerFired(now: t0 + .seconds(1000)) == .none)
        m.bodyConsumed(10, now: t0)
        #expect(!m.shouldRead && !m.acceptsNewRequest && m.timerDeadline == nil)
    }
}
