import NIOSSL
import ProxyConfig

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A file the conf names cannot be used: the error diagnostic at its argument.
struct FileProblem: Error, Sendable {
    var diagnostic: Diagnostic
}

extension ConfFile {
    /// An error about this file, at its argument.
    func problem(_ message: String) -> FileProblem {
        FileProblem(diagnostic: position.diagnostic(.error, message))
    }
}

/// Reads the PEM files a conf names. Every failure is a diagnostic at the path's argument,
/// saying which file, what is wrong with it, and what to do.
enum PEMFile {
    /// Larger than any certificate chain or CA bundle (Debian's whole store is about 200 KiB):
    /// a bigger file is a wrong path, not a PEM file.
    static let sizeLimit = 16 << 20

    /// The certificates of `file`, in file order (at least one).
    /// `role` names the file in messages: "certificate", "ca_file", "client_certificate".
    static func certificates(
        _ file: ConfFile, role: String, expecting: String
    ) -> Result<
        [NIOSSLCertificate], FileProblem
    > {
        let bytes: [UInt8]
        switch contents(of: file, role: role) {
        case .failure(let problem): return .failure(problem)
        case .success(let read): bytes = read
        }
        guard let certificates = try? NIOSSLCertificate.fromPEMBytes(bytes), !certificates.isEmpty else {
            return .failure(
                file.problem(
                    "\(role) \(file.path) is not \(expecting) in PEM (a -----BEGIN CERTIFICATE----- block is missing or damaged); give it in PEM"
                ))
        }
        return .success(certificates)
    }

    /// The private key of `file`: PEM, RSA or EC, PKCS#8 or traditional, not encrypted.
    static func privateKey(_ file: ConfFile, role: String) -> Result<NIOSSLPrivateKey, FileProblem> {
        let bytes: [UInt8]
        switch contents(of: file, role: role) {
        case .failure(let problem): return .failure(problem)
        case .success(let read): bytes = read
        }
        // Never BoringSSL's default passphrase prompt: a callback that gives no passphrase
        // makes an encrypted key fail like any unreadable one.
        let noPassphrase: NIOSSLPassphraseCallback<[UInt8]> = { _ in }
        if let key = try? NIOSSLPrivateKey(bytes: bytes, format: .pem, passphraseCallback: noPassphrase) {
            return .success(key)
        }
        if isEncrypted(bytes) {
            return .failure(
                file.problem(
                    "\(role) \(file.path) is encrypted, and cors-proxy cannot ask for a passphrase; store the key decrypted (openssl pkey -in KEY -out KEY.pem), readable only by the proxy's user"
                ))
        }
        return .failure(
            file.problem(
                "\(role) \(file.path) is not a PEM private key; give the key in PEM, RSA or EC (-----BEGIN PRIVATE KEY-----, -----BEGIN RSA PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----)"
            ))
    }

    /// PKCS#8 `ENCRYPTED PRIVATE KEY` or a traditional key with `Proc-Type: 4,ENCRYPTED`.
    private static func isEncrypted(_ bytes: [UInt8]) -> Bool {
        let text = String(decoding: bytes, as: UTF8.self)
        return text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") || text.contains("Proc-Type: 4,ENCRYPTED")
    }

    /// The whole file, or why it cannot be read.
    static func contents(of file: ConfFile, role: String) -> Result<[UInt8], FileProblem> {
        func failure(_ what: String) -> Result<[UInt8], FileProblem> {
            .failure(file.problem("cannot read \(role) \(file.path): \(what)"))
        }
        let fd = open(file.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return failure(describe(errno)) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { return failure(describe(errno)) }
        if (status.st_mode & S_IFMT) == S_IFDIR {
            return failure("it is a directory; name the PEM file itself")
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            return failure("it is not a regular file; name the PEM file itself")
        }
        guard status.st_size <= sizeLimit else {
            return failure("it is larger than 16 MiB, so it is not a PEM file; check the path")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return failure(describe(errno))
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[..<count])
            if bytes.count > sizeLimit {
                return failure("it is larger than 16 MiB, so it is not a PEM file; check the path")
            }
        }
        return .success(bytes)
    }

    /// `errno` in words, with what to do about the common ones.
    private static func describe(_ code: Int32) -> String {
        switch code {
        case ENOENT: return "no such file; check the path (a relative path is read from the conf file's directory)"
        case EACCES: return "permission denied; make it readable by the user cors-proxy runs as"
        case ENOTDIR: return "a part of the path is not a directory; check the path"
        default: return String(cString: strerror(code))
        }
    }
}
