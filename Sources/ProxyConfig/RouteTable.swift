/// The routes of a conf, sorted once at load for matching.
package struct RouteTable: Sendable, Hashable {
    /// Routes in source order.
    package let routes: [Route]
    /// Routes in match order: exact routes first (by path), then prefixes longest first.
    package let matchOrder: [Route]

    /// Sorts `routes` into match order.
    package init(_ routes: [Route]) {
        self.routes = routes
        let exact = routes.filter { $0.kind == .exact }.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        // Longest first; ties (only `/a` vs `/a/`-like pairs differ in length, so
        // real ties are distinct paths) broken by bytes for a stable order.
        let prefixes = routes.filter { $0.kind == .prefix }.sorted {
            let l = $0.path.utf8.count
            let r = $1.path.utf8.count
            return l != r ? l > r : $0.path.utf8.lexicographicallyPrecedes($1.path.utf8)
        }
        self.matchOrder = exact + prefixes
    }

    /// The route for a request path (before `?`, as received): exact beats
    /// prefix, longest prefix wins. Allocation-free.
    package func match(path: Substring) -> Route? {
        for index in matchOrder.indices where matchOrder[index].matches(path) {
            return matchOrder[index]
        }
        return nil
    }
}
