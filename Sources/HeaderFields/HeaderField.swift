/// One header line, name and value as sent or received, in order: the one header type
/// of the request parser, the CORS decision, the upstream seam and the response writers.
package struct HeaderField: Hashable, Sendable, CustomStringConvertible {
    package var name: String
    package var value: String

    @inlinable
    package init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    package var description: String { "\(name): \(value)" }

    /// The name equals the lowercase ASCII `lower`, ignoring the name's case.
    @inlinable
    package func hasName(_ lower: StaticString) -> Bool {
        ASCII.equalsLowercase(name.utf8, lower)
    }
}
