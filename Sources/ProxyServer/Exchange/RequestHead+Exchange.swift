import CORSPolicy
import HeaderFields

extension RequestHead {
    /// What the exchange state machine needs to know of this head.
    var shape: ExchangeStateMachine.RequestShape {
        let body: ExchangeStateMachine.RequestShape.Body =
            switch self.body {
            case .none, .length(0): .none
            case .length(let n): .length(n)
            case .chunked: .streamed
            }
        return ExchangeStateMachine.RequestShape(
            keepAlive: keepAlive, isHead: method == "HEAD", http10: versionMinor == 0, body: body,
            expectContinue: expectContinue)
    }
}

extension RequestHead {
    /// A WebSocket handshake: a `GET` on HTTP/1.1 with `Upgrade: websocket` and `upgrade` in
    /// `Connection`. An upgrade to anything else, or on another method or HTTP/1.0, is not.
    var isWebSocketHandshake: Bool {
        guard isUpgrade, method == "GET", versionMinor == 1 else { return false }
        for header in headers where header.hasName("upgrade") {
            var found = false
            header.value.utf8.withContiguousStorageIfAvailable { bytes in
                forEachListItem(UnsafeRawBufferPointer(bytes)) { item in
                    if ASCII.equalsLowercase(item, "websocket") { found = true }
                }
            }
            if found { return true }
        }
        return false
    }
}

extension RequestFacts {
    /// The CORS-relevant facts of a request head, in one pass over its headers.
    init(_ head: RequestHead, scheme: Scheme) {
        self.init(method: head.method, path: head.path, scheme: scheme)
        for header in head.headers {
            let (name, value) = (header.name, header.value)
            switch name.utf8.count {
            case 4 where ASCII.equalsLowercase(name.utf8, "host"):
                host = value
            case 6 where ASCII.equalsLowercase(name.utf8, "origin"):
                // An empty Origin counts as absent (docs/CONFIG.md §6).
                if !value.isEmpty { origins.append(value) }
            case 29 where ASCII.equalsLowercase(name.utf8, "access-control-request-method"):
                requestMethod = value
            case 30 where ASCII.equalsLowercase(name.utf8, "access-control-request-headers"):
                requestHeaders.append(value)
            case 38 where ASCII.equalsLowercase(name.utf8, "access-control-request-private-network"):
                if ASCII.equalsLowercase(value.utf8, "true") { privateNetwork = true }
            default:
                break
            }
        }
    }
}
