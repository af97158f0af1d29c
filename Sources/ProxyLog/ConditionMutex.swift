#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A pthread mutex with one condition variable, for the writer thread's queue: the writer
/// sleeps on it while the queue is empty, and a flush sleeps on it until the writer has
/// caught up. (`Synchronization.Mutex` has no condition variable.)
final class ConditionMutex: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        #if canImport(Glibc)
            // Timed waits count on the monotonic clock: a wall-clock jump must not end or
            // stretch a bounded flush.
            var attributes = pthread_condattr_t()
            pthread_condattr_init(&attributes)
            pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
            pthread_cond_init(condition, &attributes)
            pthread_condattr_destroy(&attributes)
        #else
            pthread_cond_init(condition, nil)
        #endif
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }

    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Sleeps until woken (the lock is held before and after).
    func wait() { pthread_cond_wait(condition, mutex) }

    /// Sleeps until woken or until the monotonic clock passes `deadline` (nanoseconds);
    /// false when the deadline passed.
    func wait(untilNanoseconds deadline: UInt64) -> Bool {
        #if canImport(Glibc)
            var spec = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        #else
            // Darwin's condition variables wait on the wall clock: convert.
            let remaining = deadline > Self.monotonicNanoseconds() ? deadline - Self.monotonicNanoseconds() : 0
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            let wall = UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec) + remaining
            var spec = timespec(tv_sec: Int(wall / 1_000_000_000), tv_nsec: Int(wall % 1_000_000_000))
        #endif
        return pthread_cond_timedwait(condition, mutex, &spec) == 0
    }

    func broadcast() { pthread_cond_broadcast(condition) }

    static func monotonicNanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }
}
