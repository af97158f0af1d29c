#if canImport(Glibc)
    import Glibc

    /// Gives the calling thread the process's nice value, so the threads it creates next
    /// (event loops, curl workers) inherit it.
    ///
    /// Async code runs on libdispatch threads, which sit at nice 0 whatever the process
    /// was started with, and a new thread inherits its creator's nice. Without this,
    /// `nice -n -10 cors-proxy serve` (or systemd's `Nice=`) would reach only the main
    /// thread, which does no work: under CPU contention the event loops got a fifth of
    /// their core while an nginx started the same way got twice that.
    func adoptProcessNice() {
        errno = 0
        // On Linux, PRIO_PROCESS with the process id names the main thread, which kept the start-up nice.
        let processNice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(getpid()))
        guard errno == 0 else { return }
        // Raising priority needs CAP_SYS_NICE; without it the threads stay where they were.
        // `who` 0 is the calling thread on Linux (priorities are per thread there).
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, processNice)
    }
#else
    func adoptProcessNice() {}
#endif
