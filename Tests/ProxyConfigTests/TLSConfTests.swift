import Testing

@testable import ProxyConfig

/// A TLS listener and an upstream, lines 1-2: cases start on line 3.
let tlsHead = "listen 127.0.0.1:0 tls\nupstream api http://127.0.0.1:3000\n"
/// A complete `tls { }` block on one line.
let tlsBlock = "tls { certificate /tls/cert.pem; key /tls/key.pem }\n"

/// `listen … tls`, the `tls { }` block and the upstream TLS directives: every diagnostic the
/// text alone can give (the files themselves are checked by ProxyTLS).
@Suite struct TLSConfTests {
    static let cases: [Golden] = [
        // listen … tls and the block.
        Golden(
            "listen tls without a tls block: at tls", "listen 127.0.0.1:8443 tls\nlisten 127.0.0.1:8444   tls\n",
            [
                "proxy.conf:1:23: error: listen … tls needs a top-level tls { certificate PATH; key PATH } block; add one, or remove tls",
                "proxy.conf:2:25: error: listen … tls needs a top-level tls { certificate PATH; key PATH } block; add one, or remove tls",
            ]),
        Golden(
            "tls block without a TLS listener: warning at tls", head + "tls {\n  certificate /c.pem\n  key /k.pem\n}\n",
            [
                "proxy.conf:3:1: warning: tls { … } has no effect: no listen directive has tls; add one (listen 0.0.0.0:8443 tls) or remove the block"
            ]),
        Golden("a complete block with a TLS listener", tlsHead + tlsBlock, []),
        Golden(
            "listen with something other than tls", head + "listen 127.0.0.1:1 ssl\n",
            [
                "proxy.conf:3:20: error: listen takes HOST:PORT and optionally tls, not 'ssl'; write listen 0.0.0.0:8080 or listen 0.0.0.0:8443 tls"
            ]),
        Golden(
            "listen tls with an extra argument", tlsHead + tlsBlock + "listen 127.0.0.1:1 tls extra\n",
            [
                "proxy.conf:4:24: error: listen takes two arguments; remove 'extra' (write listen 0.0.0.0:8443 tls)"
            ]),
        Golden(
            "the same socket cleartext and tls",
            tlsHead + tlsBlock + "listen 127.0.0.1:8080\nlisten 127.0.0.1:8080 tls\n",
            [
                "proxy.conf:5:8: error: listen 127.0.0.1:8080 is already given on line 4; remove one"
            ]),
        Golden(
            "admin takes no tls", tlsHead + tlsBlock + "admin 127.0.0.1:9901 tls\n",
            [
                "proxy.conf:4:22: error: admin takes one argument; remove 'tls' (write admin 127.0.0.1:9901)"
            ]),
        Golden(
            "block without certificate and key: at tls", tlsHead + "tls {\n  http2 off\n}\n",
            [
                "proxy.conf:3:1: error: tls { … } has no certificate; add certificate PATH (PEM: the leaf first, then the intermediates)",
                "proxy.conf:3:1: error: tls { … } has no key; add key PATH (the certificate's private key, PEM)",
            ]),
        Golden(
            "a refused certificate is not also missing", tlsHead + "tls {\n  certificate\n  key /k.pem\n}\n",
            [
                "proxy.conf:4:3: error: certificate needs one argument; write certificate /etc/cors-proxy/tls/fullchain.pem"
            ]),
        Golden(
            "an empty path", tlsHead + "tls {\n  certificate \"\"\n  key /k.pem\n}\n",
            [
                "proxy.conf:4:15: error: certificate needs a file path, not an empty word"
            ]),
        Golden(
            "bad http2 and min_version",
            tlsHead + "tls {\n  certificate /c.pem\n  key /k.pem\n  http2 maybe\n  min_version 1.1\n}\n",
            [
                "proxy.conf:6:9: error: http2 takes on or off, not 'maybe'",
                "proxy.conf:7:15: error: min_version takes 1.2 or 1.3, not '1.1'",
            ]),
        Golden(
            "certificate twice", tlsHead + "tls {\n  certificate /a.pem\n  certificate /b.pem\n  key /k.pem\n}\n",
            [
                "proxy.conf:5:3: error: certificate is already set on line 4 of this block; keep one"
            ]),
        Golden(
            "a second tls block", tlsHead + tlsBlock + tlsBlock,
            [
                "proxy.conf:4:1: error: tls { … } is already given on line 3; merge the two blocks"
            ]),
        Golden(
            "tls without a block", tlsHead + "tls /c.pem\n",
            [
                "proxy.conf:3:1: error: tls needs a block: tls { certificate PATH; key PATH }"
            ]),
        Golden(
            "tls with an argument", tlsHead + "tls on { certificate /c.pem; key /k.pem }\n",
            [
                "proxy.conf:3:5: error: tls { … } takes no arguments; remove 'on'"
            ]),
        Golden(
            "unknown directive in tls, close to a name", tlsHead + "tls {\n  certificat /c.pem\n  key /k.pem\n}\n",
            [
                "proxy.conf:3:1: error: tls { … } has no certificate; add certificate PATH (PEM: the leaf first, then the intermediates)",
                "proxy.conf:4:3: error: unknown directive 'certificat'; did you mean certificate?",
            ]),
        Golden(
            "unknown directive in tls", tlsHead + "tls { certificate /c.pem; key /k.pem; ciphers HIGH }\n",
            [
                "proxy.conf:3:39: error: unknown directive 'ciphers'; expected one of: certificate, key, http2, min_version"
            ]),
        Golden(
            "misplaced directives in tls",
            tlsHead
                + "tls {\n  certificate /c.pem\n  key /k.pem\n  listen 127.0.0.1:1\n  allow_origin *\n  tls { }\n}\n",
            [
                "proxy.conf:6:3: error: listen is not allowed inside tls { … }; move it to the top level",
                "proxy.conf:7:3: error: allow_origin is not allowed inside tls { … }, which holds certificate, key, http2 and min_version",
                "proxy.conf:8:3: error: tls { … } blocks do not nest; write the directives directly",
            ]),
        Golden(
            "tls directives outside tls",
            tlsHead + tlsBlock
                + "certificate /c.pem\nroute /a/ {\n  upstream api\n  key /k.pem\n  tls { }\n}\ncors { tls { } }\n",
            [
                "proxy.conf:4:1: error: certificate belongs inside the top-level tls { … } block",
                "proxy.conf:7:3: error: key belongs inside the top-level tls { … } block",
                "proxy.conf:8:3: error: tls is not allowed inside a route; move it to the top level",
                "proxy.conf:10:8: error: tls is not allowed inside cors { … }; move it to the top level",
            ]),

        // Upstream TLS directives.
        Golden(
            "TLS directives on an http upstream: at each name",
            head
                + "upstream b {\n  ca_file /ca.pem\n  url http://127.0.0.1:4000\n  tls_verify off\n  client_certificate /c.pem\n  client_key /k.pem\n}\n",
            [
                "proxy.conf:4:3: error: ca_file applies only to https:// upstreams, and upstream b is http://127.0.0.1:4000; remove ca_file or use an https:// URL",
                "proxy.conf:6:3: error: tls_verify applies only to https:// upstreams, and upstream b is http://127.0.0.1:4000; remove tls_verify or use an https:// URL",
                "proxy.conf:7:3: error: client_certificate applies only to https:// upstreams, and upstream b is http://127.0.0.1:4000; remove client_certificate or use an https:// URL",
                "proxy.conf:8:3: error: client_key applies only to https:// upstreams, and upstream b is http://127.0.0.1:4000; remove client_key or use an https:// URL",
            ]),
        Golden(
            "tls_verify off: warning at off",
            head + "upstream b {\n  url https://b.internal\n  tls_verify   off\n}\n",
            [
                "proxy.conf:5:16: warning: tls_verify off: the upstream's certificate and host name are not checked, so anyone on the network path can pose as it; give its CA with ca_file instead"
            ]),
        Golden(
            "every upstream TLS directive, valid",
            head
                + "upstream b {\n  url https://b.internal\n  ca_file /ca.pem\n  tls_verify on\n  client_certificate /c.pem\n  client_key /k.pem\n}\n",
            []),
        Golden(
            "client_certificate alone: at it",
            head + "upstream b {\n  url https://b.internal\n  client_certificate /c.pem\n}\n",
            [
                "proxy.conf:5:3: error: client_certificate needs client_key: add client_key PATH (the client certificate's private key, PEM)"
            ]),
        Golden(
            "client_key alone: at it",
            head + "upstream b {\n  client_key /k.pem\n  url https://b.internal\n}\n",
            [
                "proxy.conf:4:3: error: client_key needs client_certificate: add client_certificate PATH (PEM), or remove client_key"
            ]),
        Golden(
            "bad tls_verify, ca_file twice, ca_file without a path",
            head
                + "upstream b {\n  url https://b.internal\n  tls_verify yes\n  ca_file /a.pem\n  ca_file /b.pem\n}\nupstream c {\n  url https://c.internal\n  ca_file\n}\n",
            [
                "proxy.conf:5:14: error: tls_verify takes on or off, not 'yes'",
                "proxy.conf:7:3: error: ca_file is already set on line 6 of this block; keep one",
                "proxy.conf:11:3: error: ca_file needs one argument; write ca_file /etc/cors-proxy/internal-ca.pem",
            ]),
        Golden(
            "upstream TLS directives outside an upstream",
            head + "ca_file /ca.pem\nroute /a/ {\n  upstream api\n  tls_verify off\n}\ntls { client_key /k.pem }\n",
            [
                "proxy.conf:3:1: error: ca_file belongs inside an upstream NAME { … } block",
                "proxy.conf:6:3: error: tls_verify belongs inside a top-level upstream NAME { … } block; the route names it with upstream NAME",
                "proxy.conf:8:1: error: tls { … } has no certificate; add certificate PATH (PEM: the leaf first, then the intermediates)",
                "proxy.conf:8:1: error: tls { … } has no key; add key PATH (the certificate's private key, PEM)",
                "proxy.conf:8:1: warning: tls { … } has no effect: no listen directive has tls; add one (listen 0.0.0.0:8443 tls) or remove the block",
                "proxy.conf:8:7: error: client_key is not allowed inside tls { … }, which holds certificate, key, http2 and min_version",
            ]),
    ]

    @Test(arguments: cases)
    func golden(_ c: Golden) {
        c.check()
    }

    @Test func settingsAndDefaults() throws {
        let conf = """
            listen 127.0.0.1:8080
            listen 127.0.0.1:8443 tls
            tls {
                certificate /etc/tls/fullchain.pem
                key         /etc/tls/privkey.pem
            }
            upstream plain http://127.0.0.1:3000
            upstream short https://a.internal
            upstream full {
                url                https://b.internal:8443
                ca_file            /etc/ca.pem
                tls_verify         off
                client_certificate /etc/client.pem
                client_key         /etc/client.key
            }

            """
        let config = try #require(loadConf(conf).configuration)
        #expect(config.listen.map(\.tls) == [false, true])
        let tls = try #require(config.tls)
        #expect(tls.certificate.path == "/etc/tls/fullchain.pem")
        #expect(tls.key.path == "/etc/tls/privkey.pem")
        #expect(tls.http2)
        #expect(tls.minimumVersion == .tls12)
        #expect(tls.applicationProtocols == ["h2", "http/1.1"])
        #expect(tls.position == ConfPosition(file: "proxy.conf", line: 3, column: 1))
        #expect(tls.certificate.position == ConfPosition(file: "proxy.conf", line: 4, column: 17))
        #expect(tls.key.position == ConfPosition(file: "proxy.conf", line: 5, column: 17))

        #expect(config.upstreams["plain"]?.tls == nil)
        #expect(config.upstreams["short"]?.tls == UpstreamTLSSettings())
        let full = try #require(config.upstreams["full"]?.tls)
        #expect(full.caFile?.path == "/etc/ca.pem")
        #expect(full.caFile?.position == ConfPosition(file: "proxy.conf", line: 11, column: 24))
        #expect(full.verify == false)
        #expect(full.clientIdentity?.certificate.path == "/etc/client.pem")
        #expect(full.clientIdentity?.key.position == ConfPosition(file: "proxy.conf", line: 14, column: 24))
    }

    @Test func http2OffAndTLS13() throws {
        let config = try #require(
            loadConf(tlsHead + "tls { certificate /c; key /k; http2 off; min_version 1.3 }\n").configuration)
        #expect(config.tls?.http2 == false)
        #expect(config.tls?.minimumVersion == .tls13)
        #expect(config.tls?.applicationProtocols == ["http/1.1"])
    }

    /// Relative paths name files beside the conf (as nginx reads them), whatever the working directory.
    @Test func relativePathsResolveAgainstTheConfDirectory() throws {
        let conf =
            tlsHead + "tls { certificate tls/cert.pem; key ../key.pem }\nupstream b { url https://b; ca_file ca.pem }\n"
        let nested = try #require(
            ProxyConfig.load(text: conf, path: "/etc/cors-proxy/proxy.conf", environment: [:]).configuration)
        #expect(nested.tls?.certificate.path == "/etc/cors-proxy/tls/cert.pem")
        #expect(nested.tls?.key.path == "/etc/cors-proxy/../key.pem")
        #expect(nested.upstreams["b"]?.tls?.caFile?.path == "/etc/cors-proxy/ca.pem")
        #expect(nested.tls?.certificate.position.file == "/etc/cors-proxy/proxy.conf")
        let relative = try #require(ProxyConfig.load(text: conf, path: "conf/p.conf", environment: [:]).configuration)
        #expect(relative.tls?.certificate.path == "conf/tls/cert.pem")
        let bare = try #require(ProxyConfig.load(text: conf, path: "p.conf", environment: [:]).configuration)
        #expect(bare.tls?.certificate.path == "tls/cert.pem")
    }

    /// Columns of kept positions are Characters, like every diagnostic's.
    @Test func positionAfterNonASCII() throws {
        let conf =
            tlsHead
            + "tls { key /k.pem\n  certificate \"/tls/é/日本/c.pem\"  # é\n}\nupstream x { url https://x; ca_file /é/ca.pem; client_certificate /c; client_key /k }\n"
        let config = try #require(loadConf(conf).configuration)
        #expect(config.tls?.certificate.position == ConfPosition(file: "proxy.conf", line: 4, column: 15))
        #expect(config.tls?.certificate.path == "/tls/é/日本/c.pem")
        #expect(config.upstreams["x"]?.tls?.clientIdentity?.certificate.position.column == 67)
    }

    /// The file checks need the references even when the conf has other errors.
    @Test func fileReferencesSurviveErrors() throws {
        let conf = tlsHead + tlsBlock + "upstream s { url https://s; ca_file /ca.pem }\nbogus\n"
        let result = loadConf(conf)
        #expect(result.configuration == nil)
        #expect(result.tlsFiles.server?.certificate.path == "/tls/cert.pem")
        #expect(result.tlsFiles.upstreams["s"]?.caFile?.path == "/ca.pem")
        #expect(result.tlsFiles.upstreams["api"] == nil)  // http://
    }

    @Test func checkTable() throws {
        let conf =
            tlsHead + "listen 127.0.0.1:8080\n" + tlsBlock
            + "upstream s { url https://s.internal:8443; ca_file /ca.pem; tls_verify off; client_certificate /c.pem; client_key /k.pem }\nupstream d https://d.internal\n"
        let config = try #require(loadConf(conf).configuration)
        let lines = config.checkTable().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(
            Array(lines.prefix(15)) == [
                "listen         127.0.0.1:0 tls",
                "listen         127.0.0.1:8080",
                "admin          (none)",
                "self_origin    (none)",
                "max_body_size  100m",
                "drain_timeout  10s",
                "log_format     text",
                "tls            certificate /tls/cert.pem  key /tls/key.pem  http2 on  min_version 1.2",
                "",
                "upstream api  http://127.0.0.1:3000  connect_timeout 5s  timeout 1m",
                "upstream d  https://d.internal  connect_timeout 5s  timeout 1m  ca_file (system)  tls_verify on",
                "upstream s  https://s.internal:8443  connect_timeout 5s  timeout 1m  ca_file /ca.pem  tls_verify off  client_certificate /c.pem  client_key /k.pem",
                "",
                "cors { }  (defaults; also used for the no-route 404)",
                "  allow_origin           (none: no origin allowed)",
            ])
    }
}
