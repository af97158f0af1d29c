#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Unbuffered writes to stdout / stderr (no `FILE*` globals, so nothing to flush and
/// nothing that strict concurrency objects to).
enum Console {
    static func out(_ line: String) { write(fd: 1, line + "\n") }
    static func err(_ line: String) { write(fd: 2, line + "\n") }

    private static func write(fd: Int32, _ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                #if canImport(Darwin)
                    let n = Darwin.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                #elseif canImport(Musl)
                    let n = Musl.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                #else
                    let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                #endif
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}
