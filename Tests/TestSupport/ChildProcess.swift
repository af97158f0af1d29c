// What the process-level test targets (IntegrationTests, BrowserTests) share: finding the
// built executables, running them as child processes, and waiting on their output.

import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The directory holding the package's built executables (beside the test bundle).
package func builtProductsDirectory() -> URL {
    var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    // .build/debug/cors-proxyPackageTests.xctest (a file on Linux)
    while url.pathComponents.count > 1 {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("cors-proxy").path) { return url }
    }
    return URL(fileURLWithPath: ".build/debug")
}

/// A bounded wait that ran out.
package struct TestTimeout: Error, CustomStringConvertible {
    package var what: String
    package init(what: String) { self.what = what }
    package var description: String { "timed out waiting for \(what)" }
}

/// A test precondition that failed, in words.
package struct TestFailure: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

/// A child process whose stdout and stderr are collected line by line (interleaved), and its
/// stdout also as bytes.
package final class ChildProcess: @unchecked Sendable {
    package let process = Process()
    package let name: String
    private let lines = Mutex<[String]>([])
    private let stdoutBytes = Mutex<Data>(Data())
    private let stdoutDone = Mutex<Bool>(false)
    private let stdout = Pipe()
    private let stderr = Pipe()

    /// `executable` is a path, or the name of a built product of this package.
    /// `unprivileged`: when the tests run as root, run the child as `nobody` (via setpriv),
    /// the way the container image and Kubernetes run the proxy. `nice`: start it under
    /// `nice -n` (nice execs, so the process id is the child's).
    package init(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:], unprivileged: Bool = false,
        nice: Int? = nil, name: String? = nil
    ) throws {
        self.name = name ?? (executable as NSString).lastPathComponent
        let binary =
            executable.contains("/")
            ? URL(fileURLWithPath: executable) : builtProductsDirectory().appendingPathComponent(executable)
        if let nice {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/nice")
            process.arguments = ["-n", "\(nice)", binary.path] + arguments
        } else if unprivileged && getuid() == 0 {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid=nobody", "--regid=nogroup", "--clear-groups", binary.path] + arguments
        } else {
            process.executableURL = binary
            process.arguments = arguments
        }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = stdout
        process.standardError = stderr
        for (pipe, isStdout) in [(stdout, true), (stderr, false)] {
            let partial = Mutex<String>("")
            pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
                let data = handle.availableData
                guard let self else {
                    handle.readabilityHandler = nil
                    return
                }
                guard !data.isEmpty else {
                    handle.readabilityHandler = nil
                    if isStdout { self.stdoutDone.withLock { $0 = true } }
                    return
                }
                if isStdout { self.stdoutBytes.withLock { $0.append(data) } }
                let complete: [String] = partial.withLock { buffer in
                    buffer += String(decoding: data, as: UTF8.self)
                    var parts = buffer.components(separatedBy: "\n")
                    buffer = parts.removeLast()
                    return parts
                }
                self.lines.withLock { $0.append(contentsOf: complete) }
            }
        }
        try process.run()
    }

    /// Complete lines so far, stdout and stderr interleaved.
    package var output: [String] { lines.withLock { $0 } }
    /// Everything written to stdout so far.
    package var stdoutText: String { String(decoding: stdoutBytes.withLock { $0 }, as: UTF8.self) }

    /// Waits (polling, bounded) for an output line matching `predicate`; returns it.
    @discardableResult
    package func waitForLine(_ what: String, timeout: Double = 20, where predicate: (String) -> Bool) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = output.first(where: predicate) { return line }
            if !process.isRunning {
                if let line = output.first(where: predicate) { return line }
                throw TestTimeout(
                    what:
                        "\(what): \(name) exited with \(process.terminationStatus); output:\n\(output.joined(separator: "\n"))"
                )
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        throw TestTimeout(what: "\(what) from \(name); output so far:\n\(output.joined(separator: "\n"))")
    }

    package func signal(_ sig: Int32) { Glibc.kill(process.processIdentifier, sig) }

    /// Waits for exit (bounded); returns the exit status.
    package func waitForExit(timeout: Double = 20) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline { throw TestTimeout(what: "\(name) to exit") }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return process.terminationStatus
    }

    /// Waits (bounded) for exit and for stdout to be drained; nil when it is still running.
    package func exitStatusAfterOutput(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning || !stdoutDone.withLock({ $0 }) {
            if Date() > deadline { return process.isRunning ? nil : process.terminationStatus }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return process.terminationStatus
    }

    /// SIGKILL to the process, and to its whole process group when it leads one (chromium's
    /// helpers: zygote, renderer, GPU/network utility processes).
    package func stop() {
        let pid = process.processIdentifier
        guard pid > 0 else { return }
        if getpgid(pid) == pid { Glibc.kill(-pid, SIGKILL) }
        if process.isRunning {
            Glibc.kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Sanitizer reports in the child's output (under `swift test --sanitize=…` the binaries are instrumented).
    package var sanitizerReports: [String] {
        output.filter {
            $0.contains("ThreadSanitizer") || $0.contains("AddressSanitizer") || $0.contains("LeakSanitizer")
        }
    }

    deinit {
        stop()
        let reports = sanitizerReports
        if !reports.isEmpty {
            Issue.record("\(name) reported sanitizer findings:\n\(output.joined(separator: "\n"))")
        }
    }
}
