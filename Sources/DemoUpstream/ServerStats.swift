import NIOCore
import Synchronization

/// Process-wide counters (lock-free), for `GET /__stats` and the id headers.
final class ServerStats: Sendable {
    /// TCP connections accepted since start or the last `/__reset` (control connections included).
    let connectionsAccepted = Atomic<Int>(0)
    /// Connections that carried at least one non-control request since start or the last `/__reset`.
    let connectionsWithRequests = Atomic<Int>(0)
    /// Connections open right now.
    let openConnections = Atomic<Int>(0)
    /// Non-control requests since start or the last `/__reset`.
    let requests = Atomic<Int>(0)
    /// Bumped by `/__reset`, so that live connections are counted again in `connectionsWithRequests`.
    let generation = Atomic<Int>(0)

    /// Never reset: unique per process.
    private let lastConnectionID = Atomic<Int>(0)
    private let lastRequestID = Atomic<Int>(0)

    func nextConnectionID() -> Int {
        self.lastConnectionID.wrappingAdd(1, ordering: .relaxed).newValue
    }

    func nextRequestID() -> Int {
        self.lastRequestID.wrappingAdd(1, ordering: .relaxed).newValue
    }

    func reset() {
        self.connectionsAccepted.store(0, ordering: .relaxed)
        self.connectionsWithRequests.store(0, ordering: .relaxed)
        self.requests.store(0, ordering: .relaxed)
        self.generation.wrappingAdd(1, ordering: .relaxed)
    }

    /// `{"connections_accepted":N,"requests":M,"connections_with_requests":K,"open_connections":O}`
    func renderJSON(allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 128)
        buffer.writeStaticString("{\"connections_accepted\":")
        buffer.writeJSONNumber(self.connectionsAccepted.load(ordering: .relaxed))
        buffer.writeStaticString(",\"requests\":")
        buffer.writeJSONNumber(self.requests.load(ordering: .relaxed))
        buffer.writeStaticString(",\"connections_with_requests\":")
        buffer.writeJSONNumber(self.connectionsWithRequests.load(ordering: .relaxed))
        buffer.writeStaticString(",\"open_connections\":")
        buffer.writeJSONNumber(self.openConnections.load(ordering: .relaxed))
        buffer.writeStaticString("}\n")
        return buffer
    }
}
