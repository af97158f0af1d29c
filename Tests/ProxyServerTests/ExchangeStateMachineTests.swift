import Testing

@testable import ProxyServer

struct ExchangeStateMachineTests {
    @Test func simpleExchangeReturnsToIdle() {
        var m = ExchangeStateMachine()
        #expect(
            m.forward(keepAlive: true, isHead: false, http10: false, hasBody: false, declaredLength: nil, bodyLimit: 0)
                == .none)
        #expect(m.state == .waiting)
        #expect(m.upstreamHead(status: 200, contentLength: 5) == .writeHead(.length(5), close: false))
        #expect(m.upstreamBody() == .writeBody)
        #expect(m.upstreamEnd() == .finish(close: false))
        #expect(m.state == .idle)
    }

    @Test func declaredBodyOverLimitIsRefusedBeforeForwarding() {
        var m = ExchangeStateMachine()
        #expect(
            m.forward(keepAlive: true, isHead: false, http10: false, hasBody: true, declaredLength: 11, bodyLimit: 10)
                == .respond(status: 413, close: true))
        #expect(m.state == .closed)
    }

    @Test func limitIsInclusive() {
        var m = ExchangeStateMachine()
        #expect(
            m.forward(keepAlive: true, isHead: false, http10: false, hasBody: true, declaredLength: 10, bodyLimit: 10)
                == .none)
        #expect(m.requestBody(10) == .sendBody)
    }

    @Test func chunkedBodyOverLimitMidStream() {
        var m = ExchangeStateMachine()
        _ = m.forward(keepAlive: true, isHead: false, http10: false, hasBody: true, declaredLength: nil, bodyLimit: 10)
        #expect(m.requestBody(6) == .sendBody)
        #expect(m.requestBody(6) == .respond(status: 413, close: true))

        var started = ExchangeStateMachine()
        _ = started.forward(
            keepAlive: true, isHead: false, http10: false, hasBody: true, declaredLength: nil, bodyLimit: 10)
        _ = started.upstreamHead(status: 200, contentLength: nil)
        #expect(started.requestBody(11) == .cancelAndClose)
    }

    @Test func backpressureStopsReadingAboveHighWater() {
        var m = ExchangeStateMachine()
        _ = m.forward(keepAlive: true, isHead: false, http10: false, hasBody: true, declaredLength: nil, bodyLimit: 0)
        #expect(m.shouldRead)
        _ = m.requestBody(ExchangeStateMachine.requestBodyHighWater)
        #expect(!m.shouldRead)
        m.bodyConsumed(1)
        #expect(m.shouldRead)
    }

    @Test func failuresBeforeAndAfterTheHead() {
        var before = ExchangeStateMachine()
        _ = before.forward(
            keepAlive: true, isHead: false, http10: false, hasBody: false, declaredLength: nil, bodyLimit: 0)
        #expect(before.upstreamFailed(.connect) == .respond(status: 502, close: false))
        #expect(before.state == .idle)

        var timeout = ExchangeStateMachine()
        _ = timeout.forward(
            keepAlive: true, isHead: false, http10: false, hasBody: false, declaredLength: nil, bodyLimit: 0)
        #expect(timeout.upstreamFailed(.timeout) == .respond(status: 504, close: false))

        var after = ExchangeStateMachine()
        _ = after.forward(
            keepAlive: true, isHead: false, http10: false, hasBody: false, declaredLength: nil, bodyLimit: 0)
        _ = after.upstreamHead(status: 200, contentLength: 100)
        #expect(after.upstreamFailed(.reset) == .close)
        #expect(after.state == .closed)
    }

    @Test func framingRules() {
        func framing(
            status: Int, length: Int64?, head: Bool = false, http10: Bool = false
        ) -> ExchangeStateMachine.Action {
            var m = ExchangeStateMachine()
            _ = m.forward(
                keepAlive: true, isHead: head, http10: http10, hasBody: false, declaredLength: nil, bodyLimit: 0)
            return m.upstreamHead(status: status, contentLength: length)
        }
        #expect(framing(status: 200, length: nil) == .writeHead(.chunked, close: false))
        #expect(framing(status: 204, length: nil) == .writeHead(.none, close: false))
        #expect(framing(status: 304, length: 10) == .writeHead(.none, close: false))
        #expect(framing(status: 200, length: 10, head: true) == .writeHead(.none, close: false))
        #expect(framing(status: 200, length: nil, http10: true) == .writeHead(.closeDelimited, close: true))
    }

    @Test func clientGoneCancelsTheTransfer() {
        var m = ExchangeStateMachine()
        _ = m.forward(keepAlive: true, isHead: false, http10: false, hasBody: false, declaredLength: nil, bodyLimit: 0)
        #expect(m.clientClosed() == .cancelAndClose)
        #expect(m.upstreamHead(status: 200, contentLength: 1) == .none)
    }

    @Test func drainClosesIdleAndMarksActive() {
        var idle = ExchangeStateMachine()
        #expect(idle.drain() == .close)
        var active = ExchangeStateMachine()
        _ = active.forward(
            keepAlive: true, isHead: false, http10: false, hasBody: false, declaredLength: nil, bodyLimit: 0)
        #expect(active.drain() == .none)
        #expect(active.upstreamHead(status: 200, contentLength: 0) == .writeHead(.length(0), close: true))
        #expect(active.upstreamEnd() == .finish(close: true))
    }
}
