// demo-upstream: the fake upstream HTTP API used by cors-proxy's tests, demo and benchmarks.
//
//     demo-upstream [--listen HOST:PORT] [--threads N] [--no-record] [--verbose] [--quiet]
//                   [--site-listen HOST:PORT --site-dir PATH]
//                   [--tls-cert PATH --tls-key PATH [--client-ca PATH]]
//
// With `--tls-cert`/`--tls-key` the API speaks HTTPS (HTTP/1.1) with that PEM chain and key,
// so tests have a real HTTPS upstream; `--client-ca` also requires every client to present a
// certificate signed by that CA (mutual TLS). The site listener stays cleartext.
//
// Prints one line to stdout once the API socket is bound: `listening on HOST:PORT`
// (with the real port when PORT is 0); with `--site-listen`, then a second line
// `site listening on HOST:PORT` once the static file listener is bound (SiteServer.swift:
// GET/HEAD of the files under `--site-dir`, for the demo page and the browser tests).
// Exits 0 on SIGTERM/SIGINT.
//
// WebSocket handshakes (`Upgrade: websocket`, NIOWebSocket's server upgrader on the same
// listener) are recorded in /__requests like other requests; every 101 carries the first
// `Sec-WebSocket-Protocol` offered, and a `Sec-WebSocket-Extensions` offer of `x-test` as sent.
// Sources/DemoWebSocket holds the endpoints (the curl bridge's tests run them in-process). A
// WebSocket endpoint's path without a valid handshake gets 400.
//
// Routing uses the path (target up to `?`) after stripping one leading `/api/public`,
// `/api/private` or `/api`. Every response carries `X-Request-Id: <process-wide counter>`;
// HEAD gets GET's head (same Content-Length) without body. HTTP/1.1 keep-alive, pipelining.
// Only /items looks at the method; every other endpoint answers any method the same way.
//
// | endpoint                  | response                                                                |
// |---------------------------|-------------------------------------------------------------------------|
// | GET /healthz              | 200 `ok` (text/plain, no newline)                                       |
// | GET /items                | 200 JSON array of 3 items; `X-Internal-Trace: abc`, and (misconfigured  |
// |                           | upstream) `Access-Control-Allow-Origin: *`                              |
// | other methods on /items, any method on /items/ID | 200 `{"method":M,"path":P,"id":ID or null}`      |
// | ANY /me                   | 200 `{"user":"demo","cookie":<Cookie header(s) joined by "; "> or null}` |
// | ANY /echo, /echo/…        | 200 `{"method","target","version","headers":[[name,value],…],            |
// |                           | "body_length","body_fnv1a64","connection","request_id"}`                |
// | ANY /upload               | 200 `{"bytes":N,"fnv1a64":"…"}` (body streamed through the hash)        |
// | GET /bytes/N[?chunked=1]  | N bytes, byte i = i % 251; Content-Length, or chunked with `chunked=1`  |
// | GET /hash-of/N            | 200 text: FNV-1a 64 (16 hex digits) of the first N pattern bytes        |
// | ANY /status/CODE          | CODE (200–599) with `{"status":CODE}`; 204/304 no body, 205 empty      |
// | ANY /slow/MS              | waits MS ms (≤ 3600000), then 200 `{"slept_ms":MS}`                     |
// | ANY /slow-body/MS         | head (Content-Length 1000) + 500 bytes, waits MS, then the last 500     |
// | ANY /reset-mid-body       | head (Content-Length 100000) + 10000 bytes, then RST (SO_LINGER 0)      |
// | ANY /close-before-head    | reads the request, closes without answering                             |
// | ANY /headers-with-cors    | 200 with upstream ACAO `https://upstream.example`, ACAC `true`,         |
// |                           | `Vary: Accept-Encoding`                                                 |
// | ANY /vary-star            | 200 with `Vary: *`                                                      |
// | ANY /gzip                 | 200, `Content-Encoding: gzip`, gzip of "hello gzip\n" (31 bytes)        |
// | ANY /set-cookie           | 200 with two `Set-Cookie` headers                                       |
// | ANY /timing-allowed       | 200 `{"timing_allowed":true}` with `Timing-Allow-Origin: *` (a page of  |
// |                           | another origin may read the fetch's resource timing: nextHopProtocol)   |
// | GET /ws/echo (handshake)  | WebSocket: echoes every frame as it came (text, binary, continuation:   |
// |                           | fragmented messages frame by frame), pong for ping, a Close answered    |
// |                           | with the same code and reason, then closed                              |
// | GET /ws/push/N (handshake)| WebSocket: N bytes of binary messages (64 KiB each, byte i = i % 251    |
// |                           | over the stream), as fast as the socket takes them                      |
// | GET /ws/close/CODE (hs.)  | WebSocket: a Close with CODE (1000–4999) and reason `bye` at once       |
// | GET /ws/idle (handshake)  | WebSocket: the handshake, then nothing                                  |
// | ANY /ws/refuse            | 403 `{"error":"websocket_refused"}` (a handshake that is not upgraded)  |
// | GET /__requests           | JSON array of the last 1000 non-control requests (`--no-record`: none) |
// | ANY /__reset              | clears the log and the /__stats counters                                |
// | GET /__stats              | `{"connections_accepted","requests","connections_with_requests",        |
// |                           | "open_connections"}`                                                    |
// | anything else             | 404 `{"error":"not_found","method":M,"path":P}`; bad N/CODE/MS: 400    |

import DemoWebSocket
import Dispatch
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

struct CommandLineOptions {
    var host = "127.0.0.1"
    var port = 3000
    var threads = System.coreCount
    var quiet = false
    var demo = DemoOptions()
    var site: SiteOptions?
    var tls: TLSOptions?

    static let usage = """
        usage: demo-upstream [--listen HOST:PORT] [--threads N] [--no-record] [--verbose] [--quiet]
                             [--site-listen HOST:PORT --site-dir PATH]

          --listen HOST:PORT  address to bind (default 127.0.0.1:3000; PORT 0 = any free port;
                              IPv6 as [::1]:3000; a bare PORT means 127.0.0.1:PORT)
          --threads N         event loop threads (default: number of cores)
          --no-record         do not keep requests for GET /__requests (benchmarks)
          --verbose           log one line per request to stderr
          --quiet             nothing on stderr except fatal errors
          --site-listen HOST:PORT
                              also serve the static files of --site-dir on this address
          --site-dir PATH     the directory --site-listen serves (GET/HEAD; `/` is index.html)
          --tls-cert PATH --tls-key PATH
                              serve the API over HTTPS with this PEM certificate chain and key
          --client-ca PATH    with --tls-cert: require a client certificate signed by this CA

        Once bound, prints one line to stdout: `listening on HOST:PORT`; with --site-listen,
        then `site listening on HOST:PORT`.
        """

    static func parse(_ arguments: [String]) -> CommandLineOptions {
        var options = CommandLineOptions()
        var index = 0
        var siteListen: (String, Int)?
        var siteDirectory: String?
        var tlsCertificate: String?
        var tlsKey: String?
        var clientCA: String?
        func fail(_ message: String) -> Never {
            Console.err("demo-upstream: \(message)\n\(usage)")
            exit(2)
        }
        func value(for flag: String, inline: String?) -> String {
            if let inline { return inline }
            index += 1
            guard index < arguments.count else { fail("\(flag) needs a value") }
            return arguments[index]
        }
        while index < arguments.count {
            let argument = arguments[index]
            var flag = argument
            var inline: String?
            if argument.hasPrefix("--"), let eq = argument.firstIndex(of: "=") {
                flag = String(argument[..<eq])
                inline = String(argument[argument.index(after: eq)...])
            }
            switch flag {
            case "--listen", "-l":
                let text = value(for: flag, inline: inline)
                guard let (host, port) = parseListen(text) else {
                    fail("invalid --listen \(text) (expected HOST:PORT)")
                }
                options.host = host
                options.port = port
            case "--threads":
                let text = value(for: flag, inline: inline)
                guard let n = Int(text), n > 0 else { fail("invalid --threads \(text)") }
                options.threads = n
            case "--site-listen":
                let text = value(for: flag, inline: inline)
                guard let address = parseListen(text) else {
                    fail("invalid --site-listen \(text) (expected HOST:PORT)")
                }
                siteListen = address
            case "--site-dir":
                siteDirectory = value(for: flag, inline: inline)
            case "--tls-cert":
                tlsCertificate = value(for: flag, inline: inline)
            case "--tls-key":
                tlsKey = value(for: flag, inline: inline)
            case "--client-ca":
                clientCA = value(for: flag, inline: inline)
            case "--no-record":
                options.demo.record = false
            case "--verbose", "-v":
                options.demo.verbose = true
            case "--quiet", "-q":
                options.quiet = true
            case "--help", "-h":
                Console.out(usage)
                exit(0)
            default:
                fail("unknown argument \(argument)")
            }
            index += 1
        }
        if options.quiet { options.demo.verbose = false }
        switch (siteListen, siteDirectory) {
        case (nil, nil):
            break
        case (let (host, port)?, let directory?):
            guard let resolved = SiteFiles.realPath(directory) else {
                fail("--site-dir \(directory): no such directory")
            }
            options.site = SiteOptions(host: host, port: port, directory: resolved)
        default:
            fail("--site-listen and --site-dir go together")
        }
        switch (tlsCertificate, tlsKey) {
        case (nil, nil):
            if clientCA != nil { fail("--client-ca needs --tls-cert and --tls-key") }
        case (let certificate?, let key?):
            options.tls = TLSOptions(certificate: certificate, key: key, clientCA: clientCA)
        default:
            fail("--tls-cert and --tls-key go together")
        }
        return options
    }

    /// `HOST:PORT`, `[V6]:PORT`, `:PORT` (all interfaces) or `PORT` (127.0.0.1).
    static func parseListen(_ text: String) -> (String, Int)? {
        func port(_ s: Substring) -> Int? {
            guard let p = Int(s), (0...65535).contains(p) else { return nil }
            return p
        }
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":"), let p = port(rest.dropFirst()), !host.isEmpty else { return nil }
            return (String(host), p)
        }
        guard let colon = text.lastIndex(of: ":") else {
            return port(Substring(text)).map { ("127.0.0.1", $0) }
        }
        let host = text[..<colon]
        guard let p = port(text[text.index(after: colon)...]) else { return nil }
        return (host.isEmpty ? "0.0.0.0" : String(host), p)
    }
}

/// `--tls-cert`, `--tls-key`, `--client-ca`.
struct TLSOptions {
    var certificate: String
    var key: String
    var clientCA: String?

    /// The server context: the chain and key, and with a client CA, client certificates required.
    func makeContext() throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
        let privateKey = NIOSSLPrivateKeySource.privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
        var configuration: TLSConfiguration
        if let clientCA {
            configuration = TLSConfiguration.makeServerConfigurationWithMTLS(
                certificateChain: chain, privateKey: privateKey,
                trustRoots: .certificates(try NIOSSLCertificate.fromPEMFile(clientCA)))
            // A client is not a host name: check its chain only.
            configuration.certificateVerification = .noHostnameVerification
        } else {
            configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: privateKey)
        }
        configuration.applicationProtocols = ["http/1.1"]
        return try NIOSSLContext(configuration: configuration)
    }
}

func run(_ options: CommandLineOptions) -> Never {
    let shared = DemoShared(options: options.demo)
    let group = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
    var tlsContext: NIOSSLContext?
    if let tls = options.tls {
        do {
            tlsContext = try tls.makeContext()
        } catch {
            Console.err("demo-upstream: cannot use --tls-cert \(tls.certificate) / --tls-key \(tls.key): \(error)")
            exit(1)
        }
    }
    let serverTLS = tlsContext

    let bootstrap = ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 1024)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
        .childChannelOption(.allowRemoteHalfClosure, value: true)
        .childChannelOption(.maxMessagesPerRead, value: 16)
        .childChannelInitializer { channel in
            let stats = shared.stats
            stats.connectionsAccepted.wrappingAdd(1, ordering: .relaxed)
            stats.openConnections.wrappingAdd(1, ordering: .relaxed)
            channel.closeFuture.whenComplete { _ in
                stats.openConnections.wrappingSubtract(1, ordering: .relaxed)
            }
            let connectionID = stats.nextConnectionID()
            let upgrader = DemoWebSocket.upgrader(
                removingOnUpgrade: DemoHandler.name,
                endpoint: { head in WebSocketEndpoint.route(path: Endpoint.stripAPIPrefix(Endpoint.path(of: head.uri)))
                },
                sawHandshake: { _, head in shared.noteRequest(connection: connectionID, head: head) })
            return channel.eventLoop.makeCompletedFuture {
                if let serverTLS {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: serverTLS))
                }
                try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                    withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }), withErrorHandling: true)
                try channel.pipeline.syncOperations.addHandler(
                    DemoHandler(shared: shared, connectionID: connectionID), name: DemoHandler.name)
            }
        }

    let server: Channel
    do {
        server = try bootstrap.bind(host: options.host, port: options.port).wait()
    } catch {
        Console.err("demo-upstream: cannot listen on \(options.host):\(options.port): \(error)")
        try? group.syncShutdownGracefully()
        exit(1)
    }

    Console.out("listening on \(describe(server.localAddress, host: options.host, port: options.port))")

    var servers = [server]
    if let site = options.site {
        let verbose = options.demo.verbose
        let siteBootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        SiteHandler(directory: site.directory, verbose: verbose))
                }
            }
        do {
            let siteServer = try siteBootstrap.bind(host: site.host, port: site.port).wait()
            servers.append(siteServer)
            Console.out(
                "site listening on \(describe(siteServer.localAddress, host: site.host, port: site.port))")
        } catch {
            Console.err("demo-upstream: cannot listen on \(site.host):\(site.port) (site): \(error)")
            server.close(promise: nil)
            try? group.syncShutdownGracefully()
            exit(1)
        }
    }

    let listeners = servers
    // SIGTERM / SIGINT: stop accepting, close every connection, exit 0.
    let signalQueue = DispatchQueue(label: "demo-upstream.signals")
    var signalSources: [DispatchSourceSignal] = []
    for signalNumber in [SIGTERM, SIGINT] {
        signal(signalNumber, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: signalQueue)
        source.setEventHandler {
            for listener in listeners { listener.close(promise: nil) }
            // Safety net: never hang on shutdown.
            signalQueue.asyncAfter(deadline: .now() + .seconds(5)) { exit(0) }
        }
        source.resume()
        signalSources.append(source)
    }

    for listener in listeners { try? listener.closeFuture.wait() }
    if !options.quiet {
        Console.err("demo-upstream: shutting down")
    }
    try? group.syncShutdownGracefully()
    withExtendedLifetime(signalSources) {}
    exit(0)
}

/// `IP:PORT`, or `[IP]:PORT` for IPv6, of a bound socket.
func describe(_ bound: SocketAddress?, host: String, port: Int) -> String {
    let ip = bound?.ipAddress ?? host
    let port = bound?.port ?? port
    if case .v6 = bound { return "[\(ip)]:\(port)" }
    return "\(ip):\(port)"
}

run(CommandLineOptions.parse(Array(CommandLine.arguments.dropFirst())))
