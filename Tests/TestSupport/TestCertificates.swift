import Foundation

/// Certificates for TLS tests, made by the `openssl` command into a directory at test time
/// (no network, nothing committed). Every path is absolute; keys are unencrypted PEM.
///
/// - `ca`: a private CA; every leaf below but `otherCA`'s is signed by it.
/// - `leaf`: for 127.0.0.1 (SAN `IP:127.0.0.1`, `DNS:localhost`), valid 90 days, EC P-256
///   key in PKCS#8; `leafChain` is the leaf followed by the CA (leaf first, as served).
/// - `expired` (expired yesterday), `expiring` (expires in 5 days), `wrongName`
///   (`wrong.example` only): otherwise like `leaf`.
/// - `client`: a client certificate (extended key usage clientAuth) signed by the CA.
/// - `otherKey`: a key that belongs to no certificate here.
/// - `rsaLeaf` with its key in the traditional RSA format (`BEGIN RSA PRIVATE KEY`), and
///   `ecTraditionalKey`: `leaf`'s key as `BEGIN EC PRIVATE KEY`. `encryptedKey`: `leaf`'s key
///   encrypted with a passphrase.
/// - `otherCA`: a second CA with its own 127.0.0.1 leaf (`otherLeaf`): trusted by nothing here.
package struct TestCertificates: Sendable {
    /// A certificate file and its key file.
    package struct Pair: Sendable {
        package var certificate: String
        package var key: String

        package init(certificate: String, key: String) {
            self.certificate = certificate
            self.key = key
        }
    }

    package var directory: String
    package var ca: Pair
    package var leaf: Pair
    package var leafChain: String
    package var expired: Pair
    package var expiring: Pair
    package var wrongName: Pair
    package var client: Pair
    package var otherKey: String
    package var rsaLeaf: Pair
    package var ecTraditionalKey: String
    package var encryptedKey: String
    package var otherCA: Pair
    package var otherLeaf: Pair

    /// One set per test process, made on first use in a fresh temporary directory.
    package static func shared() throws -> TestCertificates {
        try sharedResult.get()
    }

    private static let sharedResult: Result<TestCertificates, any Error> = Result {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("cors-proxy-certs-\(UUID().uuidString)").path
        return try make(in: directory)
    }

    /// Makes every certificate and key in `directory` (created if missing).
    package static func make(in directory: String) throws -> TestCertificates {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // World-readable, so a proxy started as `nobody` (unprivileged tests) can read them too.
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory)
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        let config = path("openssl.cnf")
        try """
        [req]
        distinguished_name = dn
        prompt = no
        [dn]
        CN = cors-proxy test
        [ca]
        basicConstraints = critical, CA:TRUE
        keyUsage = critical, keyCertSign, cRLSign
        subjectKeyIdentifier = hash

        """.write(toFile: config, atomically: true, encoding: .utf8)

        func ecKey(_ name: String) throws -> String {
            try openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path(name)])
            return path(name)
        }
        func makeCA(_ name: String, _ commonName: String) throws -> Pair {
            let key = try ecKey("\(name).key")
            try openssl([
                "req", "-x509", "-new", "-config", config, "-extensions", "ca", "-key", key, "-subj",
                "/CN=\(commonName)",
                "-days", "3650", "-out", path("\(name).pem"),
            ])
            return Pair(certificate: path("\(name).pem"), key: key)
        }
        var serial = 1
        func sign(
            _ name: String, key: String, by issuer: Pair, commonName: String, extensions: String, days: Int
        ) throws -> Pair {
            let extensionsFile = path("\(name).ext")
            try extensions.write(toFile: extensionsFile, atomically: true, encoding: .utf8)
            try openssl([
                "req", "-new", "-config", config, "-key", key, "-subj", "/CN=\(commonName)", "-out",
                path("\(name).csr"),
            ])
            serial += 1
            try openssl([
                "x509", "-req", "-in", path("\(name).csr"), "-CA", issuer.certificate, "-CAkey", issuer.key,
                "-set_serial", "\(serial)", "-days", "\(days)", "-extfile", extensionsFile, "-out", path("\(name).pem"),
            ])
            return Pair(certificate: path("\(name).pem"), key: key)
        }
        let server = """
            basicConstraints = CA:FALSE
            keyUsage = critical, digitalSignature, keyEncipherment
            extendedKeyUsage = serverAuth
            subjectAltName = IP:127.0.0.1, DNS:localhost

            """
        let ca = try makeCA("ca", "cors-proxy test CA")
        let leaf = try sign(
            "leaf", key: try ecKey("leaf.key"), by: ca, commonName: "127.0.0.1", extensions: server, days: 90)
        let chain = path("leaf-chain.pem")
        try
            (String(contentsOfFile: leaf.certificate, encoding: .utf8)
            + String(contentsOfFile: ca.certificate, encoding: .utf8)).write(
                toFile: chain, atomically: true, encoding: .utf8)
        // -days -1: not after yesterday (openssl 3.0 has no -not_after).
        let expired = try sign(
            "expired", key: try ecKey("expired.key"), by: ca, commonName: "127.0.0.1", extensions: server, days: -1)
        let expiring = try sign(
            "expiring", key: try ecKey("expiring.key"), by: ca, commonName: "127.0.0.1", extensions: server, days: 5)
        let wrongName = try sign(
            "wrong-name", key: try ecKey("wrong-name.key"), by: ca, commonName: "wrong.example",
            extensions: server.replacingOccurrences(
                of: "IP:127.0.0.1, DNS:localhost", with: "DNS:wrong.example"), days: 90)
        let client = try sign(
            "client", key: try ecKey("client.key"), by: ca, commonName: "cors-proxy test client",
            extensions:
                "basicConstraints = CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\n",
            days: 90)
        let otherKey = try ecKey("other.key")

        let rsaKey = path("rsa.key")
        try openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path("rsa-pkcs8.key")])
        try openssl(["pkey", "-in", path("rsa-pkcs8.key"), "-traditional", "-out", rsaKey])
        let rsaLeaf = try sign("rsa", key: rsaKey, by: ca, commonName: "127.0.0.1", extensions: server, days: 90)
        let ecTraditional = path("leaf-traditional.key")
        try openssl(["pkey", "-in", leaf.key, "-traditional", "-out", ecTraditional])
        let encrypted = path("leaf-encrypted.key")
        try openssl(["pkey", "-in", leaf.key, "-aes256", "-passout", "pass:secret", "-out", encrypted])

        let otherCA = try makeCA("other-ca", "cors-proxy other test CA")
        let otherLeaf = try sign(
            "other-leaf", key: try ecKey("other-leaf.key"), by: otherCA, commonName: "127.0.0.1", extensions: server,
            days: 90)

        for file in try FileManager.default.contentsOfDirectory(atPath: directory) {
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path(file))
        }
        return TestCertificates(
            directory: directory, ca: ca, leaf: leaf, leafChain: chain, expired: expired, expiring: expiring,
            wrongName: wrongName, client: client, otherKey: otherKey, rsaLeaf: rsaLeaf, ecTraditionalKey: ecTraditional,
            encryptedKey: encrypted, otherCA: otherCA, otherLeaf: otherLeaf)
    }

    /// Runs `openssl ARGS`; throws with its stderr when it fails.
    @discardableResult
    package static func openssl(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestFailure(
                "openssl \(arguments.joined(separator: " ")) failed (\(process.terminationStatus)): \(String(decoding: stderr, as: UTF8.self))"
            )
        }
        return String(decoding: stdout, as: UTF8.self)
    }
}
