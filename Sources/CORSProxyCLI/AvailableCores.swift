import CProcessInfo
import NIOCore

/// How many CPUs the proxy may use: the default number of event loops and of curl workers.
///
/// NIO's `System.coreCount` honours cgroup CPU quotas and cpusets (containers), but not the
/// process's affinity mask: under `taskset -c 0` (or systemd's `CPUAffinity=`) it still counts
/// every core, and two event loops and two curl workers then share one CPU, costing context
/// switches for nothing. `nproc` counts the affinity mask; so does this, and takes the smaller.
enum AvailableCores {
    static var count: Int {
        let allowed = Int(cprocessinfo_affinity_cpu_count())
        let limit = System.coreCount
        return max(1, allowed > 0 ? min(allowed, limit) : limit)
    }
}
