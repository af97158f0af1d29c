import ArgumentParser
import ProxyConfig

/// `cors-proxy check`: validate and print the resolved rules table.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate the conf and print the resolved rules table (exit 0 valid, 1 invalid).")

    @OptionGroup var options: ConfigOptions

    func run() throws {
        let result = options.load()
        printDiagnostics(result.diagnostics)
        guard let configuration = result.configuration, result.errors.isEmpty else {
            throw ExitCode(1)
        }
        print(configuration.checkTable(), terminator: "")
    }
}
