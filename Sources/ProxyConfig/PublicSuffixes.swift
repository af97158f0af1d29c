/// A built-in subset of the Public Suffix List: the multi-tenant and
/// second-level suffixes most often put behind a wildcard by mistake. It is a
/// deliberate subset (the full list is ~10k entries and changes weekly);
/// single-label suffixes (`*.com`, `*.uk`) are already refused by
/// `OriginEntry.parse`, so only multi-label ones are listed.
enum PublicSuffixes {
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

    static func contains(_ suffix: String) -> Bool { entries.contains(suffix) }
}
