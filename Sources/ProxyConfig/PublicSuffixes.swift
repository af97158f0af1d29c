/// A built-in subset of the Public Suffix List: the multi-tenant and
/// second-level suffixes most often put behind a wildcard by mistake. It is a
/// deliberate subset (the full list is ~10k entries and changes weekly);
/// single-label suffixes (`*.com`, `*.uk`) are already refused by
/// `OriginEntry.parse`, so only multi-label ones are listed.
package enum PublicSuffixes {
    static let entries: Set<String> = [
        // Country second levels.
        "co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "ltd.uk", "plc.uk",
        "com.au", "net.au", "org.au", "edu.au", "gov.au",
        "co.nz", "co.jp", "ne.jp", "or.jp", "co.kr", "co.in", "co.za", "co.il",
        "com.br", "com.cn", "com.mx", "com.tr", "com.sg", "com.hk", "com.tw", "com.ar",
        // Multi-tenant hosting: every customer gets a subdomain.
        "github.io", "githubusercontent.com", "gitlab.io", "netlify.app", "netlify.com", "vercel.app", "now.sh",
        "herokuapp.com", "pages.dev", "workers.dev", "r2.dev", "web.app", "firebaseapp.com", "appspot.com",
        "blogspot.com", "azurewebsites.net", "azurestaticapps.net", "cloudapp.net", "cloudfront.net",
        "s3.amazonaws.com", "elasticbeanstalk.com", "amplifyapp.com", "onrender.com", "fly.dev", "deno.dev",
        "railway.app", "up.railway.app", "glitch.me", "surge.sh", "ngrok.io", "ngrok-free.app", "trycloudflare.com",
        "repl.co", "replit.app", "codesandbox.io", "stackblitz.io", "webflow.io", "wixsite.com", "myshopify.com",
    ]

    /// Whether `suffix` (lowercase, no leading dot) is a listed public suffix.
    package static func contains(_ suffix: String) -> Bool { entries.contains(suffix) }

    /// The registrable domain of a lowercase DNS host: one label below the longest public
    /// suffix that matches, where a suffix not in the built-in list is the last label (the
    /// Public Suffix List's default rule). `a.b.example.com` → `example.com`,
    /// `x.shop.co.uk` → `shop.co.uk`, `alice.github.io` → `alice.github.io`. nil for a
    /// single label, an IP address, or a host that is itself a public suffix.
    package static func registrableDomain(of host: String) -> String? {
        guard !host.hasPrefix("["), !host.allSatisfy({ $0.isNumber || $0 == "." }) else { return nil }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2, !labels.contains(where: \.isEmpty) else { return nil }
        var suffixLength = 1
        // Longest first: `up.railway.app` before `railway.app`.
        for length in stride(from: labels.count, through: 2, by: -1)
        where entries.contains(labels.suffix(length).joined(separator: ".")) {
            suffixLength = length
            break
        }
        guard labels.count > suffixLength else { return nil }
        return labels.suffix(suffixLength + 1).joined(separator: ".")
    }
}
