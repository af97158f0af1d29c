#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The little the command line needs of the operating system: the environment, whole files,
/// stderr, the clock. Straight from the C library, so the executable does not link Foundation
/// (and its ICU data: most of what a static binary weighed, and ~9 MiB of RSS at start).
enum SystemIO {
    /// The process's environment.
    static var environment: [String: String] {
        var result: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.utf8.firstIndex(of: UInt8(ascii: "=")) {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            entry += 1
        }
        return result
    }

    /// One environment variable.
    static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// Why a file could not be read, in words.
    enum ReadFailure: Error {
        case missing
        case unreadable(String)
    }

    /// The whole file at `path`.
    static func readFile(_ path: String) -> Result<[UInt8], ReadFailure> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            return .failure(errno == ENOENT ? .missing : .unreadable(String(cString: strerror(errno))))
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var block = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = block.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count == 0 { return .success(bytes) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(.unreadable(String(cString: strerror(errno))))
            }
            bytes += block[0..<count]
        }
    }

    /// Writes `text` to stderr, whole.
    static func writeError(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return }
                offset += n
            }
        }
    }

    /// Seconds since the epoch.
    static var now: Int64 { Int64(time(nil)) }
}

extension SystemIO {
    /// What `raiseOpenFileLimit()` found and did.
    struct OpenFileLimit {
        var before: UInt64
        var after: UInt64
    }

    /// Raises the soft limit on open descriptors to the hard limit, as Go programs and nginx's
    /// `worker_rlimit_nofile` do: every proxied request holds two sockets, and the soft limit is
    /// often 1024 (systemd's default for services), which 512 clients would exhaust. Nil when
    /// the limits cannot be read.
    static func raiseOpenFileLimit() -> OpenFileLimit? {
        var limit = rlimit()
        #if canImport(Glibc)
            let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
            let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &limit) == 0 else { return nil }
        let before = UInt64(limit.rlim_cur)
        guard limit.rlim_cur < limit.rlim_max else { return OpenFileLimit(before: before, after: before) }
        limit.rlim_cur = limit.rlim_max
        guard setrlimit(resource, &limit) == 0 else { return OpenFileLimit(before: before, after: before) }
        return OpenFileLimit(before: before, after: UInt64(limit.rlim_cur))
    }
}
