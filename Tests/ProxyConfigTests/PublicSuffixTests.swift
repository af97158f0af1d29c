import Testing

@testable import ProxyConfig

@Suite struct PublicSuffixTests {
    @Test(arguments: [
        ("a.example.com", "example.com"),
        ("a.b.example.com", "example.com"),
        ("example.com", "example.com"),
        ("x.shop.co.uk", "shop.co.uk"),
        ("shop.co.uk", "shop.co.uk"),
        ("alice.github.io", "alice.github.io"),
        ("a.alice.github.io", "alice.github.io"),
        ("app.up.railway.app", "app.up.railway.app"),
        ("x.app.railway.app", "app.railway.app"),
    ])
    func registrableDomain(_ host: String, _ domain: String) {
        #expect(PublicSuffixes.registrableDomain(of: host) == domain)
    }

    @Test(arguments: ["localhost", "com", "co.uk", "github.io", "127.0.0.1", "[::1]", "a..b", ""])
    func noRegistrableDomain(_ host: String) {
        #expect(PublicSuffixes.registrableDomain(of: host) == nil)
    }
}
