import CORSPolicy
import HeaderFields
import Upstream

/// Header rewriting between the client and the upstream (docs/DESIGN.md, "Forwarding").
package enum HeaderRewriting {
    /// What rewriting needs to know about a header name, found without allocating
    /// (this runs for every header of every request and response).
    enum Kind {
        /// `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`,
        /// `Upgrade`: never passed on in either direction.
        case hopByHop
        case contentLength, host, expect, vary
        case xForwardedFor, xForwardedProto, xForwardedHost
        case accessControl
        case other
    }

    static func kind(of name: String) -> Kind {
        let n = name.utf8
        switch n.count {
        case 2 where ASCII.equalsLowercase(n, "te"): return .hopByHop
        case 4 where ASCII.equalsLowercase(n, "host"): return .host
        case 4 where ASCII.equalsLowercase(n, "vary"): return .vary
        case 6 where ASCII.equalsLowercase(n, "expect"): return .expect
        case 7 where ASCII.equalsLowercase(n, "trailer"), 7 where ASCII.equalsLowercase(n, "upgrade"): return .hopByHop
        case 10 where ASCII.equalsLowercase(n, "connection"), 10 where ASCII.equalsLowercase(n, "keep-alive"):
            return .hopByHop
        case 14 where ASCII.equalsLowercase(n, "content-length"): return .contentLength
        case 15 where ASCII.equalsLowercase(n, "x-forwarded-for"): return .xForwardedFor
        case 16 where ASCII.equalsLowercase(n, "proxy-connection"),
            17 where ASCII.equalsLowercase(n, "transfer-encoding"):
            return .hopByHop
        case 16 where ASCII.equalsLowercase(n, "x-forwarded-host"): return .xForwardedHost
        case 17 where ASCII.equalsLowercase(n, "x-forwarded-proto"): return .xForwardedProto
        default:
            return n.count > 15 && ASCII.equalsLowercase(n.prefix(15), "access-control-") ? .accessControl : .other
        }
    }

    /// Whether a `Connection` header named `name` (the set holds lowercased names; usually empty).
    @inline(__always)
    static func isNamed(_ name: String, in named: Set<String>) -> Bool {
        !named.isEmpty && named.contains(name.lowercased())
    }

    /// The names a `Connection` header lists (they are hop-by-hop for this message), lowercased.
    static func connectionNamed<C: Collection>(_ headers: C) -> Set<String>
    where C.Element == HeaderField {
        var named: Set<String> = []
        for header in headers
        where header.name.utf8.count == 10 && ASCII.equalsLowercase(header.name.utf8, "connection") {
            for item in header.value.split(separator: ",") {
                let token = item.trimmingSpaces().lowercased()
                // `keep-alive`, `close`, `upgrade` are dropped anyway; leaving them out keeps
                // the set empty for the usual `Connection: keep-alive`, so no name is lowercased.
                if !token.isEmpty && token != "close" && kind(of: token) != .hopByHop { named.insert(token) }
            }
        }
        return named
    }

    /// The headers sent upstream: hop-by-hop and `Content-Length` removed (curl frames the
    /// body), `Host` replaced unless `preserveHost`, `X-Forwarded-*` set, the rest in order.
    package static func upstreamRequestHeaders(
        _ headers: [HeaderField], clientAddress: String, scheme: Scheme, upstreamHost: String,
        preserveHost: Bool
    ) -> [HeaderField] {
        let named = connectionNamed(headers)
        var out: [HeaderField] = []
        out.reserveCapacity(headers.count + 3)
        var forwardedFor: String? = nil
        var requestHost: String? = nil
        for header in headers {
            let (name, value) = (header.name, header.value)
            let kind = kind(of: name)
            if kind == .hopByHop || isNamed(name, in: named) { continue }
            switch kind {
            case .contentLength, .xForwardedProto, .xForwardedHost, .expect:
                // curl frames the body; X-Forwarded-* are ours; the proxy answers
                // `Expect: 100-continue` itself, so the upstream never sees it.
                continue
            case .host:
                requestHost = value
                out.append(HeaderField(name, preserveHost ? value : upstreamHost))
            case .xForwardedFor:
                forwardedFor = forwardedFor.map { $0 + ", " + value } ?? value
            case .hopByHop, .vary, .accessControl, .other:
                out.append(HeaderField(name, value))
            }
        }
        if requestHost == nil {
            // An HTTP/1.0 request without Host still needs one upstream.
            out.insert(HeaderField("Host", upstreamHost), at: 0)
        }
        out.append(HeaderField("X-Forwarded-For", forwardedFor.map { $0 + ", " + clientAddress } ?? clientAddress))
        out.append(HeaderField("X-Forwarded-Proto", scheme.rawValue))
        if let requestHost { out.append(HeaderField("X-Forwarded-Host", requestHost)) }
        return out
    }

    /// The upstream's response headers as the client gets them: hop-by-hop and framing
    /// removed (the server re-frames), the upstream's `Access-Control-*` removed when
    /// `stripCORS`, `Origin` merged into `Vary` when `varyOrigin`, then `add` appended.
    package static func clientResponseHeaders(
        _ upstream: [HeaderField], stripCORS: Bool, varyOrigin: Bool, add: [HeaderField]
    ) -> (headers: [HeaderField], contentLength: Int64?) {
        let named = connectionNamed(upstream)
        var out: [HeaderField] = []
        out.reserveCapacity(upstream.count + add.count + 1)
        var contentLength: Int64? = nil
        var varyItems: [Substring] = []
        var varyIndex: Int? = nil
        var varyStar = false
        for header in upstream {
            let kind = kind(of: header.name)
            if kind == .hopByHop || isNamed(header.name, in: named) { continue }
            if kind == .contentLength {
                contentLength = Int64(header.value.trimmingSpaces())
                continue
            }
            if stripCORS && kind == .accessControl { continue }
            if varyOrigin && kind == .vary {
                // Several Vary lines become one, so Origin is listed exactly once.
                if varyIndex == nil {
                    varyIndex = out.count
                    out.append(HeaderField(header.name, ""))
                }
                for item in header.value.split(separator: ",") {
                    let trimmed = item.trimmingSpaces()
                    if trimmed == "*" { varyStar = true }
                    if !trimmed.isEmpty { varyItems.append(trimmed) }
                }
                continue
            }
            out.append(header)
        }
        if varyOrigin {
            let hasOrigin = varyItems.contains { ASCII.equalsLowercase($0.utf8, "origin") }
            if !hasOrigin && !varyStar { varyItems.append("Origin") }
            let value = varyItems.joined(separator: ", ")
            if let varyIndex {
                out[varyIndex].value = value
            } else {
                out.append(HeaderField("Vary", value))
            }
        }
        out.append(contentsOf: add)
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
