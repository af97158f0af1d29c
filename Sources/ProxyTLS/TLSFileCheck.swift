import NIOSSL
import ProxyConfig

/// A loaded conf whose TLS files were read and checked.
package struct CheckedConf: Sendable {
    /// The load result with the files' diagnostics merged in, in source order; without a
    /// configuration when any diagnostic is an error.
    package var result: LoadResult
    /// The TLS listeners' context, built from the very files just checked; nil when the conf
    /// has no `tls { }` block or has errors.
    package var serverTLSContext: NIOSSLContext?
}

/// Reads every TLS file a conf names and reports, at the argument naming it, a file that
/// cannot be read or parsed, a key that does not belong to its certificate, and a server
/// certificate that has expired or expires soon.
package enum TLSFileCheck {
    /// A server certificate expiring sooner than this is warned about.
    package static let expiryWarningSeconds: Int64 = 14 * 86_400

    /// `result` with its TLS files checked. `now` is seconds since the epoch.
    package static func check(_ result: LoadResult, now: Int64) -> CheckedConf {
        let (fileDiagnostics, context) = run(result.tlsFiles, now: now)
        let merged = (result.diagnostics + fileDiagnostics).enumerated().sorted {
            ($0.element.line, $0.element.column, $0.offset) < ($1.element.line, $1.element.column, $1.offset)
        }.map(\.element)
        let failed = merged.contains { $0.severity == .error }
        var checked = result
        checked.diagnostics = merged
        if failed { checked.configuration = nil }
        return CheckedConf(result: checked, serverTLSContext: failed ? nil : context)
    }

    /// The diagnostics of the files `references` names, and the listeners' context when the
    /// `tls { }` block's files are good.
    package static func run(_ references: TLSFileReferences, now: Int64) -> ([Diagnostic], NIOSSLContext?) {
        var diagnostics: [Diagnostic] = []
        var context: NIOSSLContext?
        if let server = references.server {
            let built = ServerTLSContext.build(server)
            diagnostics += built.errors
            context = built.context
            if let leaf = built.leaf, let warning = expiryWarning(leaf, server.certificate, now: now) {
                diagnostics.append(warning)
            }
        }
        for name in references.upstreams.keys.sorted() {
            guard let tls = references.upstreams[name] else { continue }
            diagnostics += upstreamProblems(tls)
        }
        return (diagnostics, context)
    }

    /// `ca_file` and the client pair of one upstream. curl reads these files itself for
    /// every new connection; reading them here too makes a bad file a conf error at load
    /// instead of a 502 on the first request.
    static func upstreamProblems(_ tls: UpstreamTLSSettings) -> [Diagnostic] {
        var problems: [Diagnostic] = []
        if let caFile = tls.caFile,
            case .failure(let problem) = PEMFile.certificates(
                caFile, role: "ca_file", expecting: "a CA certificate bundle")
        {
            problems.append(problem.diagnostic)
        }
        guard let identity = tls.clientIdentity else { return problems }
        let chain = PEMFile.certificates(identity.certificate, role: "client_certificate", expecting: "a certificate")
        let key = PEMFile.privateKey(identity.key, role: "client_key")
        guard case .success(let certificates) = chain, case .success(let privateKey) = key else {
            return problems + [chain.failure, key.failure].compactMap { $0?.diagnostic }
        }
        // A throwaway context: building it is how BoringSSL compares the key with the leaf.
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: certificates.map { NIOSSLCertificateSource.certificate($0) },
            privateKey: .privateKey(privateKey))
        do {
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            problems.append(
                ServerTLSContext.pairProblem(
                    error, certificate: identity.certificate, key: identity.key,
                    mismatch:
                        "the client_key in \(identity.key.path) does not belong to the client_certificate in \(identity.certificate.path); give the matching key"
                ))
        }
        return problems
    }

    /// A warning when the leaf has expired or expires within `expiryWarningSeconds`.
    static func expiryWarning(_ leaf: NIOSSLCertificate, _ file: ConfFile, now: Int64) -> Diagnostic? {
        let notAfter = Int64(leaf.notValidAfter)
        let date = formatDate(notAfter)
        if notAfter <= now {
            return file.position.diagnostic(
                .warning,
                "the certificate in \(file.path) expired on \(date); browsers refuse it: renew it")
        }
        guard notAfter - now <= expiryWarningSeconds else { return nil }
        // Rounded up: a certificate made for 5 days says "in 5 days", not 4 and a bit.
        let days = (notAfter - now + 86_399) / 86_400
        let when = days == 1 ? "in 1 day" : "in \(days) days"
        return file.position.diagnostic(
            .warning, "the certificate in \(file.path) expires on \(date), \(when); renew it before then")
    }

    /// `YYYY-MM-DD` (UTC) of a time in seconds since the epoch (Howard Hinnant's civil_from_days).
    static func formatDate(_ seconds: Int64) -> String {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(year)-\(two(month))-\(two(day))"
    }
}
