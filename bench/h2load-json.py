#!/usr/bin/env python3
"""Turns h2load's report (stdin) into the `JSON {…}` line bench/wrk.lua prints, so run.sh
records HTTP/2 runs like wrk runs.

  requests      h2load's "succeeded" (2xx and 3xx answers, as wrk counts requests)
  bytes         "traffic: … total" (headers and data, after HPACK)
  duration_us   "finished in Xs"
  err_status    the requests that did not succeed: done but not 2xx/3xx, or failed (h2load's
                "failed" includes "errored" and "timeout")
  err_timeout   "timeout"
  p50_us        "time for request" mean (h2load prints no percentiles)
  p99_us        -1: not measured (report.py prints –)
"""
import json
import re
import sys

text = sys.stdin.read()


def number(pattern, default=None):
    m = re.search(pattern, text)
    if not m:
        if default is not None:
            return default
        sys.stderr.write(text)
        raise SystemExit(f"h2load-json: no match for {pattern!r} in h2load's output")
    return m.group(1)


def seconds(value):
    for unit, factor in (("us", 1e-6), ("ms", 1e-3), ("s", 1.0)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    return float(value)


finished = seconds(number(r"finished in ([0-9.]+(?:us|ms|s))"))
m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", text)
if not m:
    sys.stderr.write(text)
    raise SystemExit("h2load-json: no requests line in h2load's output")
total, started, done, succeeded, failed, errored, timeout = map(int, m.groups())
traffic = int(number(r"traffic: [0-9.]+[KMG]?B \((\d+)\) total"))
mean = number(r"time for request:\s+\S+\s+\S+\s+(\S+)", "0us")
print("JSON " + json.dumps({
    "requests": succeeded, "bytes": traffic, "duration_us": int(finished * 1e6),
    "err_connect": 0, "err_read": 0, "err_write": 0, "err_status": max(done - succeeded, failed),
    "err_timeout": timeout, "p50_us": int(seconds(mean) * 1e6), "p99_us": -1,
}, separators=(",", ":")))
