// What Swift cannot reach of the C library directly: CPU_COUNT is a macro.
#ifndef CPROCESSINFO_H
#define CPROCESSINFO_H

/// The number of CPUs this process may run on (its affinity mask, as `nproc` reports it,
/// which `taskset` and container CPU sets narrow); 0 when it cannot be read.
int cprocessinfo_affinity_cpu_count(void);

#endif
