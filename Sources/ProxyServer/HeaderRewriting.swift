import CORSPolicy
import CurlBridge

/// Header rewriting between the client and the upstream (SPEC 3, "Forwarding").
package enum HeaderRewriting {
    /// Hop-by-hop headers, lowercased: never passed on in either direction.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    ]

    /// The names a `Connection` header lists (they are hop-by-hop for this message), lowercased.
    static func connectionNamed<C: Collection>(_ headers: C) -> Set<String>
    where C.Element == (name: String, value: String) {
        var named: Set<String> = []
        for header in headers where header.name.utf8.count == 10 && header.name.lowercased() == "connection" {
            for item in header.value.split(separator: ",") {
                let token = item.trimmingSpaces().lowercased()
                if !token.isEmpty { named.insert(token) }
            }
        }
        return named
    }

    /// The headers sent upstream: hop-by-hop and `Content-Length` removed (curl frames the
    /// body), `Host` replaced unless `preserveHost`, `X-Forwarded-*` set, the rest in order.
    package static func upstreamRequestHeaders(
        _ headers: [(name: String, value: String)], clientAddress: String, scheme: Scheme, upstreamHost: String,
        preserveHost: Bool
    ) -> [HeaderLine] {
        let named = connectionNamed(headers)
        var out: [HeaderLine] = []
        out.reserveCapacity(headers.count + 3)
        var forwardedFor: String? = nil
        var requestHost: String? = nil
        for (name, value) in headers {
            let lower = name.lowercased()
            if hopByHop.contains(lower) || named.contains(lower) { continue }
            switch lower {
            case "content-length", "x-forwarded-proto", "x-forwarded-host", "expect":
                // curl frames the body; X-Forwarded-* are ours; the proxy answers
                // `Expect: 100-continue` itself, so the upstream never sees it.
                continue
            case "host":
                requestHost = value
                out.append(HeaderLine(name, preserveHost ? value : upstreamHost))
            case "x-forwarded-for":
                forwardedFor = forwardedFor.map { $0 + ", " + value } ?? value
            default:
                out.append(HeaderLine(name, value))
            }
        }
        if requestHost == nil {
            // An HTTP/1.0 request without Host still needs one upstream.
            out.insert(HeaderLine("Host", upstreamHost), at: 0)
        }
        out.append(HeaderLine("X-Forwarded-For", forwardedFor.map { $0 + ", " + clientAddress } ?? clientAddress))
        out.append(HeaderLine("X-Forwarded-Proto", scheme.rawValue))
        if let requestHost { out.append(HeaderLine("X-Forwarded-Host", requestHost)) }
        return out
    }

    /// The upstream's response headers as the client gets them: hop-by-hop and framing
    /// removed (the server re-frames), the upstream's `Access-Control-*` removed when
    /// `stripCORS`, `Origin` merged into `Vary` when `varyOrigin`, then `add` appended.
    package static func clientResponseHeaders(
        _ upstream: [HeaderLine], stripCORS: Bool, varyOrigin: Bool, add: [HeaderField]
    ) -> (headers: [(name: String, value: String)], contentLength: Int64?) {
        let named = connectionNamed(upstream.lazy.map { (name: $0.name, value: $0.value) })
        var out: [(name: String, value: String)] = []
        out.reserveCapacity(upstream.count + add.count + 1)
        var contentLength: Int64? = nil
        var varyItems: [Substring] = []
        var varyIndex: Int? = nil
        var varyStar = false
        for header in upstream {
            let lower = header.name.lowercased()
            if hopByHop.contains(lower) || named.contains(lower) { continue }
            if lower == "content-length" {
                contentLength = Int64(header.value.trimmingSpaces())
                continue
            }
            if stripCORS && lower.hasPrefix("access-control-") { continue }
            if varyOrigin && lower == "vary" {
                // Several Vary lines become one, so Origin is listed exactly once.
                if varyIndex == nil {
                    varyIndex = out.count
                    out.append((header.name, ""))
                }
                for item in header.value.split(separator: ",") {
                    let trimmed = item.trimmingSpaces()
                    if trimmed == "*" { varyStar = true }
                    if !trimmed.isEmpty { varyItems.append(trimmed) }
                }
                continue
            }
            out.append((header.name, header.value))
        }
        if varyOrigin {
            let hasOrigin = varyItems.contains { $0.lowercased() == "origin" }
            if !hasOrigin && !varyStar { varyItems.append("Origin") }
            let value = varyItems.joined(separator: ", ")
            if let varyIndex {
                out[varyIndex].value = value
            } else {
                out.append(("Vary", value))
            }
        }
        for field in add { out.append((field.name, field.value)) }
        return (out, contentLength)
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    func trimmingSpaces() -> Substring {
        var s = self[...]
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return Substring(s)
    }
}
