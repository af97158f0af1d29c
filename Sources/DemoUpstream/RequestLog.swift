import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Synchronization

/// One request as the upstream received it (recorded when its head arrives).
struct RecordedRequest: Sendable {
    var seq: Int
    var connection: Int
    var method: HTTPMethod
    var target: String
    var version: HTTPVersion
    var headers: HTTPHeaders
}

/// The last `capacity` non-control requests, for `GET /__requests`.
///
/// Recording is a lock plus one slot store in a ring (the header list is shared, not copied);
/// rendering happens outside the lock.
final class RequestLog: Sendable {
    let capacity: Int

    private struct Ring {
        var slots: [RecordedRequest] = []
        var next = 0  // index of the oldest entry once the ring is full
        var seq = 0
    }

    private let ring = NIOLockedValueBox(Ring())

    init(capacity: Int = 1000) {
        self.capacity = capacity
    }

    func record(connection: Int, head: HTTPRequestHead) {
        let capacity = self.capacity
        self.ring.withLockedValue { ring in
            ring.seq += 1
            let entry = RecordedRequest(
                seq: ring.seq, connection: connection, method: head.method,
                target: head.uri, version: head.version, headers: head.headers)
            if ring.slots.count < capacity {
                ring.slots.append(entry)
            } else {
                ring.slots[ring.next] = entry
                ring.next = (ring.next + 1) % capacity
            }
        }
    }

    func clear() {
        self.ring.withLockedValue { ring in
            ring.slots.removeAll(keepingCapacity: true)
            ring.next = 0
        }
    }

    /// Oldest first.
    func snapshot() -> [RecordedRequest] {
        self.ring.withLockedValue { ring in
            if ring.next == 0 { return ring.slots }
            return Array(ring.slots[ring.next...] + ring.slots[..<ring.next])
        }
    }

    /// `[{"seq":1,"connection":3,"method":"GET","target":"/x?y","version":"HTTP/1.1","headers":[["Host","…"],…]},…]`
    func renderJSON(allocator: ByteBufferAllocator) -> ByteBuffer {
        let entries = self.snapshot()
        var buffer = allocator.buffer(capacity: 256 * max(entries.count, 1))
        buffer.writeInteger(UInt8(ascii: "["))
        for (index, entry) in entries.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            buffer.writeStaticString("{\"seq\":")
            buffer.writeJSONNumber(entry.seq)
            buffer.writeStaticString(",\"connection\":")
            buffer.writeJSONNumber(entry.connection)
            buffer.writeStaticString(",\"method\":")
            buffer.writeJSONString(entry.method.rawValue)
            buffer.writeStaticString(",\"target\":")
            buffer.writeJSONString(entry.target)
            buffer.writeStaticString(",\"version\":")
            buffer.writeJSONString(entry.version.description)
            buffer.writeStaticString(",\"headers\":")
            buffer.writeJSONHeaderList(entry.headers)
            buffer.writeInteger(UInt8(ascii: "}"))
        }
        buffer.writeStaticString("]\n")
        return buffer
    }
}
