import CORSPolicy
import NIOConcurrencyHelpers
import NIOCore

/// A route's rendered answers to allowed preflights.
///
/// Browsers and the pages behind them repeat the same few preflights (one per
/// origin × method × header list), so the decision and the rendering are done once
/// per distinct request and the bytes are reused: a hit writes a shared buffer.
/// The key is everything `CompiledPolicy.decide` reads for a preflight: the `Origin`
/// lines, the requested method, headers and Private Network Access, and `Host` with
/// the listener's scheme (same-origin requests are decided differently). The cache
/// belongs to a `ServingRoute`, so a reload starts empty.
///
/// Only keep-alive answers to allowed preflights are stored: denials are logged one
/// by one, and a closing answer carries `Connection: close`. Bounded: past
/// `capacity` distinct keys a preflight is decided and rendered afresh, so a client
/// inventing header lists cannot grow memory.
package final class PreflightResponseCache: Sendable {
    package struct Key: Hashable, Sendable {
        var origins: [String]
        var requestMethod: String
        var requestHeaders: [String]
        var privateNetwork: Bool
        var host: String?
        var scheme: Scheme

        init(_ facts: RequestFacts, requestMethod: String) {
            self.origins = facts.origins
            self.requestMethod = requestMethod
            self.requestHeaders = facts.requestHeaders
            self.privateNetwork = facts.privateNetwork
            self.host = facts.host
            self.scheme = facts.scheme
        }
    }

    package struct Entry: Sendable {
        var status: Int
        var decision: Decision
        /// Status line, headers and the blank line (the answer has no body), when an HTTP/1.1
        /// connection rendered it; nil when an HTTP/2 stream made the entry (it replays `decision`).
        var response: ByteBuffer?
    }

    package static let capacity = 256

    private let entries = NIOLockedValueBox<[Key: Entry]>([:])

    package init() {}

    /// How many request shapes are kept (tests).
    package var count: Int { entries.withLockedValue { $0.count } }

    package func entry(for key: Key) -> Entry? {
        entries.withLockedValue { $0[key] }
    }

    /// Keeps `entry` unless `capacity` other shapes are already kept.
    package func store(_ entry: Entry, for key: Key) {
        entries.withLockedValue { table in
            if table.count < Self.capacity || table[key] != nil { table[key] = entry }
        }
    }
}
