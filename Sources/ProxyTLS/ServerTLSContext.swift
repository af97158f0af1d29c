import NIOSSL
import ProxyConfig

/// The TLS files of a conf could not be used: one diagnostic per problem, at the argument
/// that names the file.
package struct TLSFileErrors: Error, Sendable, CustomStringConvertible {
    /// Errors (never warnings), in source order.
    package var diagnostics: [Diagnostic]

    package var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// The context of the browser-facing TLS listeners, built from the `tls { }` block.
package enum ServerTLSContext {
    /// Reads the block's certificate chain and key and builds the context a TLS listener hands
    /// to `NIOSSLServerHandler`: the chain (leaf first) and key, `min_version`, and ALPN `h2`
    /// then `http/1.1` (only `http/1.1` with `http2 off`; a client that offers neither gets
    /// no ALPN answer and speaks HTTP/1.1).
    ///
    /// The files are read when this is called, so calling it on every (re)load serves a
    /// rotated certificate to new connections. Blocking file I/O and key parsing: call it off
    /// the event loops. `TLSFileCheck` builds the context the same way while checking, so a
    /// conf that passed the checks comes with its context (`CheckedConf.serverTLSContext`).
    package static func make(_ settings: ServerTLSSettings) throws(TLSFileErrors) -> NIOSSLContext {
        let built = build(settings)
        guard let context = built.context else { throw TLSFileErrors(diagnostics: built.errors) }
        return context
    }

    /// What `make` read: the context, or the errors; and the leaf, when it could be parsed
    /// (for the expiry warning, which holds even when the key is wrong).
    static func build(
        _ settings: ServerTLSSettings
    ) -> (
        context: NIOSSLContext?, leaf: NIOSSLCertificate?, errors: [Diagnostic]
    ) {
        let chain = PEMFile.certificates(
            settings.certificate, role: "certificate", expecting: "a certificate chain")
        let key = PEMFile.privateKey(settings.key, role: "key")
        let leaf = try? chain.get().first
        guard case .success(let certificates) = chain, case .success(let privateKey) = key else {
            return (nil, leaf, [chain.failure, key.failure].compactMap { $0?.diagnostic })
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: certificates.map { NIOSSLCertificateSource.certificate($0) },
            privateKey: .privateKey(privateKey))
        configuration.minimumTLSVersion = settings.minimumVersion == .tls13 ? NIOSSL.TLSVersion.tlsv13 : .tlsv12
        configuration.applicationProtocols = settings.applicationProtocols
        do {
            return (try NIOSSLContext(configuration: configuration), leaf, [])
        } catch {
            let problem = pairProblem(
                error, certificate: settings.certificate, key: settings.key,
                mismatch:
                    "the key in \(settings.key.path) does not belong to the certificate in \(settings.certificate.path) (the first certificate there must be the leaf this key was made for); give the matching key, or put the leaf first"
            )
            return (nil, leaf, [problem])
        }
    }

    /// Why a parsed chain and key could not make a context. BoringSSL refuses a key that is
    /// not the leaf's when the context is built (`SSL_CTX_use_PrivateKey`), which NIOSSL
    /// reports as `failedToLoadPrivateKey`: that is reported at the key.
    static func pairProblem(_ error: any Error, certificate: ConfFile, key: ConfFile, mismatch: String) -> Diagnostic {
        if case .failedToLoadPrivateKey = error as? NIOSSLError {
            return key.position.diagnostic(.error, mismatch)
        }
        return certificate.position.diagnostic(
            .error, "the certificate in \(certificate.path) cannot be used with the key in \(key.path): \(error)")
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}
