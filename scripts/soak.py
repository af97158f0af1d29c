#!/usr/bin/env python3
"""Soak: a steady-rate mix of preflights, GETs, uploads and downloads through the release
cors-proxy for SOAK_SECONDS (default 600); RSS, FD and thread counts of the proxy sampled
every SOAK_SAMPLE seconds (default 10). Every response is checked (status, CORS header, body
or body hash). Writes the table (and docs/soak.png when matplotlib is importable) into
docs/RELIABILITY.md between the SOAK markers, and the raw samples to .build/soak.json.

  SOAK_SECONDS=600 SOAK_RATE=200 SOAK_CLIENTS=4 scripts/soak.py
Exit status 1 when a response was wrong, a request was lost, or the proxy died."""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reliability import (ROOT, Ops, Outcome, Proxy, fd_count, replace_doc_block, own_fds, rss_kib, settle_own_fds,  # noqa: E402
                         start_upstream, threads, upstream_connections)

SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
RATE = float(os.environ.get("SOAK_RATE", "200"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "4"))
SAMPLE = float(os.environ.get("SOAK_SAMPLE", "10"))

# Per 20 requests: 5 preflights, 8 GETs, 3 uploads (1 KiB, 64 KiB, 256 KiB), 4 downloads (1 KiB, 64 KiB, 1 MiB).
MIX = [("preflight", None)] * 5 + [("get", None)] * 8 + [("upload", 1024), ("upload", 64 << 10), ("upload", 256 << 10)] \
    + [("download", 1024), ("download", 64 << 10), ("download", 1 << 20), ("download", 64 << 10)]


def main():
    upstream = start_upstream()
    proxy = Proxy(upstream.port)
    pid = proxy.pid
    ops = Ops(proxy.port)
    # Warm up (allocator, curl pools) at the soak's concurrency, then take the baseline.
    ops.warm_up(MIX, CLIENTS)
    up = upstream.port
    base_fd, base_rss = own_fds(pid, up), rss_kib(pid)
    counts = {"ok": 0, "expected_fail": 0, "wrong": 0}
    by_op = {}
    wrong = []
    lock = threading.Lock()
    stop = time.time() + SECONDS
    interval = CLIENTS / RATE

    def client(k):
        i = k * 7
        next_at = time.time()
        while time.time() < stop:
            op, arg = MIX[i % len(MIX)]
            i += 1
            outcome, detail = ops.run(op, arg)
            with lock:
                counts[outcome] += 1
                key = f"{op}{'' if arg is None else ' ' + str(arg)}"
                by_op.setdefault(key, {"ok": 0, "expected_fail": 0, "wrong": 0})[outcome] += 1
                if outcome == Outcome.WRONG and len(wrong) < 50:
                    wrong.append(f"{time.strftime('%H:%M:%S')} {detail}")
            next_at += interval
            delay = next_at - time.time()
            if delay > 0:
                time.sleep(delay)
            elif delay < -5:
                next_at = time.time()  # far behind: do not burst
        ops.drop()

    workers = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(CLIENTS)]
    t0 = time.time()
    for w in workers:
        w.start()
    samples = [(0, base_rss, fd_count(pid), threads(pid), 0, upstream_connections(pid, up))]
    print(f"soak: {SECONDS}s at {RATE:g} req/s, {CLIENTS} clients; baseline RSS {base_rss} KiB, {base_fd} FDs "
          "(not counting pooled upstream connections)",
          flush=True)
    next_sample = t0 + SAMPLE
    while time.time() < stop:
        time.sleep(max(0, min(next_sample, stop) - time.time()))
        if time.time() >= next_sample:
            with lock:
                done = sum(counts.values())
            s = (round(time.time() - t0), rss_kib(pid), fd_count(pid), threads(pid), done, upstream_connections(pid, up))
            samples.append(s)
            print(f"  t={s[0]:4d}s RSS {s[1]} KiB  FDs {s[2]} ({s[5]} upstream)  threads {s[3]}  requests {s[4]}",
                  flush=True)
            next_sample += SAMPLE
        if not proxy.child.alive():
            break
    for w in workers:
        w.join(30)
    elapsed = time.time() - t0
    alive = proxy.child.alive()
    end_fd = settle_own_fds(pid, up, base_fd) if alive else -1
    end_rss = rss_kib(pid)
    pool = upstream_connections(pid, up)
    samples.append((round(time.time() - t0), end_rss, fd_count(pid), threads(pid), sum(counts.values()), pool))
    sanitizer = proxy.child.sanitizer_reports()
    proxy.child.stop()
    upstream.stop()

    total = sum(counts.values())
    result = {
        "seconds": round(elapsed), "rate_target": RATE, "clients": CLIENTS, "requests": total,
        "achieved_rate": round(total / elapsed, 1), "counts": counts, "by_op": by_op, "wrong": wrong,
        "baseline": {"rss_kib": base_rss, "fds": base_fd}, "end": {"rss_kib": end_rss, "fds": end_fd},
        "end_upstream_pool": pool, "peak_rss_kib": max(s[1] for s in samples), "alive": alive, "samples": samples, "sanitizer": sanitizer,
    }
    os.makedirs(os.path.join(ROOT, ".build"), exist_ok=True)
    with open(os.path.join(ROOT, ".build", "soak.json"), "w") as f:
        json.dump(result, f, indent=1)
    plot = make_plot(samples)
    write_doc(result, plot)
    print(f"soak: {total} requests in {elapsed:.0f}s ({total / elapsed:.1f}/s): {counts}; "
          f"RSS {base_rss} -> {end_rss} KiB (peak {result['peak_rss_kib']}), FDs {base_fd} -> {end_fd}; alive={alive}")
    for w in wrong[:10]:
        print("  WRONG:", w)
    ok = alive and counts["wrong"] == 0 and counts["expected_fail"] == 0 and end_fd <= base_fd and not sanitizer
    sys.exit(0 if ok else 1)


def make_plot(samples):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    t = [s[0] / 60 for s in samples]
    fig, ax1 = plt.subplots(figsize=(8, 3.5))
    ax1.plot(t, [s[1] / 1024 for s in samples], color="tab:blue", label="RSS (MiB)")
    ax1.set_xlabel("minutes")
    ax1.set_ylabel("RSS (MiB)", color="tab:blue")
    ax1.set_ylim(bottom=0)
    ax2 = ax1.twinx()
    ax2.plot(t, [s[2] for s in samples], color="tab:orange", label="open FDs")
    ax2.set_ylabel("open FDs", color="tab:orange")
    ax2.set_ylim(bottom=0)
    ax1.set_title("cors-proxy soak: RSS and open descriptors")
    fig.tight_layout()
    path = os.path.join(ROOT, "docs", "soak.png")
    fig.savefig(path, dpi=90)
    return "soak.png"


def write_doc(r, plot):
    lines = ["<!-- SOAK:BEGIN (written by scripts/soak.py) -->",
             f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {r['seconds']} s, target {r['rate_target']:g} "
             f"req/s over {r['clients']} keep-alive clients, release build, on the shared 2-core machine.",
             "",
             f"- requests: **{r['requests']}** ({r['achieved_rate']}/s): {r['counts']['ok']} correct, "
             f"{r['counts']['wrong']} wrong, {r['counts']['expected_fail']} failed (502/504/closed); lost: "
             f"**{r['counts']['expected_fail'] + r['counts']['wrong']}**",
             f"- proxy alive at the end: {r['alive']}; sanitizer lines: {len(r['sanitizer'])}",
             f"- RSS: {r['baseline']['rss_kib']} KiB after warm-up, peak {r['peak_rss_kib']} KiB, "
             f"{r['end']['rss_kib']} KiB at the end",
             f"- open FDs other than pooled upstream connections: {r['baseline']['fds']} after warm-up, "
             f"{r['end']['fds']} at the end (after settling); pooled upstream connections at the end: "
             f"{r['end_upstream_pool']}",
             "", "| op | correct | failed | wrong |", "|---|---:|---:|---:|"]
    for k in sorted(r["by_op"]):
        v = r["by_op"][k]
        lines.append(f"| {k} | {v['ok']} | {v['expected_fail']} | {v['wrong']} |")
    lines += ["", "| t (s) | RSS (KiB) | open FDs (all) | of them upstream | threads | requests so far |",
              "|---:|---:|---:|---:|---:|---:|"]
    for s in r["samples"]:
        lines.append(f"| {s[0]} | {s[1]} | {s[2]} | {s[5]} | {s[3]} | {s[4]} |")
    if plot:
        lines += ["", f"![RSS and FDs during the soak]({plot})"]
    lines.append("<!-- SOAK:END -->")
    replace_doc_block("SOAK", "\n".join(lines))

if __name__ == "__main__":
    main()
