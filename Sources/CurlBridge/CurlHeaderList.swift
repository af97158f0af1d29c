import CCurl
import HeaderFields

#if canImport(Glibc)
    import Glibc
#endif

/// The request's header lines as curl reads them (`CURLOPT_HTTPHEADER`): one `malloc`
/// holding every `curl_slist` node and its text, built from the final header list.
/// No I/O and no curl call: what it builds is checked node by node in CurlHeaderListTests.
enum CurlHeaderList {

    /// The request's headers for curl, plus the blanks that stop curl adding its own
    /// (`Accept:` always, `Expect:` when `blankExpect`: curl adds that one only to uploads).
    /// `Content-Length`/`Transfer-Encoding` are left to curl: it frames the body from `RequestBodyFraming`.
    /// Headers whose name is empty or whose name or value holds CR, LF or NUL are dropped.
    ///
    /// One `malloc` holds the nodes and their text (curl only reads a header list): free it
    /// with `free(_:)`, never `curl_slist_free_all`.
    static func make(_ headers: [HeaderField], blankExpect: Bool = true) -> UnsafeMutablePointer<curl_slist>? {
        let acceptBlank: StaticString = "Accept:"
        let expectBlank: StaticString = "Expect:"
        var textCapacity = 16  // both blanks with their NULs
        for header in headers { textCapacity += header.name.utf8.count + header.value.utf8.count + 3 }
        let nodeCapacity = headers.count + 2
        let nodeBytes = nodeCapacity * MemoryLayout<curl_slist>.stride
        guard let block = malloc(nodeBytes + textCapacity) else { return nil }
        let nodes = block.bindMemory(to: curl_slist.self, capacity: nodeCapacity)
        let text = (block + nodeBytes).bindMemory(to: UInt8.self, capacity: textCapacity)
        var nodeCount = 0
        var used = 0

        func link(_ start: Int) {
            nodes[nodeCount] = curl_slist(
                data: UnsafeMutableRawPointer(text + start).assumingMemoryBound(to: CChar.self), next: nil)
            if nodeCount > 0 { nodes[nodeCount - 1].next = nodes + nodeCount }
            nodeCount += 1
        }
        /// Copies `s` at `used`; false (nothing kept) when it holds CR, LF or NUL.
        func copy(_ s: String) -> Bool {
            let copied = s.utf8.withContiguousStorageIfAvailable { bytes in
                copyChecked(UnsafeRawBufferPointer(bytes))
            }
            if let copied { return copied }
            var bridged = s  // not native UTF-8 (bridged): make it so, once
            return bridged.withUTF8 { copyChecked(UnsafeRawBufferPointer($0)) }
        }
        func copyChecked(_ bytes: UnsafeRawBufferPointer) -> Bool {
            for byte in bytes where byte <= UInt8(ascii: "\r") {
                if byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") || byte == 0 { return false }
            }
            if let base = bytes.baseAddress {
                UnsafeMutableRawPointer(text + used).copyMemory(from: base, byteCount: bytes.count)
            }
            used += bytes.count
            return true
        }

        var sawAccept = false
        var sawExpect = false
        for header in headers {
            let name = header.name
            if name.isEmpty || isFramingHeader(name) { continue }
            let start = used
            // `Name;` is curl's spelling of a header with an empty value (`Name:` would delete it).
            guard copy(name) else { continue }
            if header.value.isEmpty {
                text[used] = UInt8(ascii: ";")
                used += 1
            } else {
                text[used] = UInt8(ascii: ":")
                text[used + 1] = UInt8(ascii: " ")
                used += 2
                guard copy(header.value) else {
                    used = start
                    continue
                }
            }
            text[used] = 0
            used += 1
            link(start)
            if ASCII.equalsLowercase(name.utf8, "accept") { sawAccept = true }
            if ASCII.equalsLowercase(name.utf8, "expect") { sawExpect = true }
        }
        func appendBlank(_ blank: StaticString) {
            let start = used
            blank.withUTF8Buffer { bytes in
                UnsafeMutableRawPointer(text + used).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
                used += bytes.count
            }
            text[used] = 0
            used += 1
            link(start)
        }
        if !sawAccept { appendBlank(acceptBlank) }
        if blankExpect && !sawExpect { appendBlank(expectBlank) }
        return nodes
    }

    /// Frees a list made by `headerList`.
    static func free(_ list: UnsafeMutablePointer<curl_slist>) {
        Glibc.free(UnsafeMutableRawPointer(list))
    }

    private static func isFramingHeader(_ name: String) -> Bool {
        ASCII.equalsLowercase(name.utf8, "content-length") || ASCII.equalsLowercase(name.utf8, "transfer-encoding")
    }
}
