#!/usr/bin/env python3
"""Process measurements for bench/run.sh (Linux /proc only).

  procstat.py tree PID            PID and its direct children (nginx master + workers)
  procstat.py cpu PID...          utime+stime of all threads of the PIDs, in clock ticks
  procstat.py sample OUT PID...   reset VmHWM (clear_refs 5), then sample the summed VmRSS
                                  every 100 ms until SIGTERM; writes JSON to OUT:
                                  start_kb, max_kb (max of samples and of VmHWM), samples
"""
import json
import os
import signal
import sys
import time


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        # rest[0] is field 3 (state); utime is field 14, stime field 15
        return int(rest[11]) + int(rest[12])
    except OSError:
        return 0


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    cmd = sys.argv[1]
    if cmd == "tree":
        pid = int(sys.argv[2])
        print(" ".join(str(p) for p in [pid] + children(pid)))
    elif cmd == "cpu":
        print(sum(cpu_ticks(int(p)) for p in sys.argv[2:]))
    elif cmd == "sample":
        out = sys.argv[2]
        pids = [int(p) for p in sys.argv[3:]]
        for p in pids:
            try:
                with open(f"/proc/{p}/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass
        start = sum(status_kb(p, "VmRSS") for p in pids)
        state = {"stop": False}
        signal.signal(signal.SIGTERM, lambda *_: state.__setitem__("stop", True))
        peak, n = start, 0
        while not state["stop"]:
            peak = max(peak, sum(status_kb(p, "VmRSS") for p in pids))
            n += 1
            time.sleep(0.1)
        hwm = sum(status_kb(p, "VmHWM") for p in pids)
        with open(out, "w") as f:
            json.dump({"start_kb": start, "max_kb": max(peak, hwm), "samples": n}, f)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
