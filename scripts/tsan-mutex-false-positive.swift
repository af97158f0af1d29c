// TSan false positive of Synchronization.Mutex on Linux (docs/RELIABILITY.md, "Sanitizer findings"):
//   swiftc -sanitize=thread -g scripts/tsan-mutex-false-positive.swift -o /tmp/m && /tmp/m
// reports "Swift access race" although every access is inside Mutex.withLock (and prints 800000).
import Synchronization
import Foundation
final class Box: @unchecked Sendable { var value = 0; var list: [Int] = [] }
let box = Box()
let lock = Mutex<Int>(0)
let threads = (0..<4).map { k in
    Thread {
        for i in 0..<200_000 {
            lock.withLock { n in n += 1; box.value += 1; if i % 1000 == 0 { box.list.append(i) } }
        }
    }
}
threads.forEach { $0.start() }
while lock.withLock({ $0 }) < 800_000 { usleep(1000) }
print("done", box.value)
