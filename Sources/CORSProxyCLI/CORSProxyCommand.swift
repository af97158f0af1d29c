import ArgumentParser
import ProxyServer

/// `cors-proxy`: serve (default), check, explain, suggest.
@main
struct CORSProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cors-proxy",
        abstract: "A CORS-enforcing reverse proxy.",
        version: "cors-proxy \(BuildInfo.version)",
        subcommands: [Serve.self, Check.self, Explain.self, Suggest.self],
        defaultSubcommand: Serve.self
    )
}
