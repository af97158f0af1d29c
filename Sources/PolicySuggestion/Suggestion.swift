/// What `cors-proxy suggest` found: per route, the conf lines that would allow the denied
/// requests, and what needs a person's decision.
package struct Suggestion: Sendable {
    package typealias Seen = DenialDigest.Seen

    /// One value to add to a list: an origin, a wildcard, a method or a header name.
    package struct Item: Sendable, Equatable {
        /// As the conf writes it.
        package var value: String
        package var seen: Seen
        /// For a wildcard: each host it covers, with its count.
        package var hosts: [Host] = []

        package struct Host: Sendable, Equatable {
            package var host: String
            package var count: Int
        }
    }

    /// Something the log asked for that is not put on a conf line without a decision.
    package struct HeldBack: Sendable, Equatable {
        package var value: String
        package var seen: Seen
        /// Why, and what to write if you decide for it.
        package var reason: String
    }

    /// One `allow_*` line: the route's current values (with `--config`), then the additions.
    package struct Directive: Sendable, Equatable {
        /// `allow_origin`, `allow_methods` or `allow_headers`.
        package var name: String
        package var current: [String]
        package var additions: [Item]
    }

    package struct Route: Sendable, Equatable {
        /// As written in the conf: `/api/`, `= /healthz`.
        package var label: String
        /// Something to say about the route as a whole (e.g. it is not in the conf).
        package var note: String?
        /// Only the lines with something to add, in the order origin, methods, headers.
        package var directives: [Directive]
        package var heldBack: [HeldBack]

        /// Nothing to print for this route.
        package var isEmpty: Bool { directives.isEmpty && heldBack.isEmpty }
    }

    /// Routes with something to print, sorted by label.
    package var routes: [Route]
    /// Whether the route's current values were read from a conf.
    package var fromConfiguration: Bool
    package var minCount: Int
    package var denialLines: Int
    package var deniedLines: Int
    package var reportedLines: Int
    package var linesRead: Int
    package var skippedLines: Int
    /// Why there is nothing to suggest, when `routes` is empty.
    package var emptyReason: String?
}
