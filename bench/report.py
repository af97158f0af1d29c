#!/usr/bin/env python3
"""Turns bench/run.sh's raw JSON lines into one table (stdout + markdown file).

usage: report.py RAW.jsonl OUT.md "SETUP TEXT" [NOTES_FILE]

Medians over rounds for rates, latencies and CPU; the maximum over rounds for
RSS. Cells of runs that saw socket errors or non-2xx/3xx statuses are marked †.
"""
import json
import statistics
import sys
from collections import defaultdict

TARGETS = ["direct", "nginx", "nginx-log", "go", "cors-proxy", "defaults", "cors-proxy-b"]
MiB = 2**20
GiB = 2**30
BODY = {"up8m": 8 * MiB}          # bytes sent per request (wrk counts only received bytes)

SCEN = {
    "preflight": "preflight OPTIONS c=64",
    "small64": "GET small c=64",
    "small512": "GET small c=512",
    "dl1m": "GET 1 MiB c=16",
    "up8m": "POST 8 MiB c=8",
    "dl64m": "GET 64 MiB c=16",
    "tls-preflight": "TLS h1 preflight c=64",
    "tls-small64": "TLS h1 GET small c=64",
    "h2-preflight": "h2 preflight 4×16 streams",
    "h2-small64": "h2 GET small 4×16 streams",
    "tls-handshake": "TLS handshake + GET c=16",
}


def load(path):
    runs = defaultdict(list)
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                runs[(r["scenario"], r["target"])].append(r)
    return runs


def secs(r):
    return r["wrk"]["duration_us"] / 1e6


def errors(r):
    return sum(v for k, v in r["wrk"].items() if k.startswith("err_"))


def m_rps(r):
    return r["wrk"]["requests"] / secs(r)


def m_p99(r):
    # h2load measures no percentiles (p99_us -1)
    return None if r["wrk"]["p99_us"] < 0 else r["wrk"]["p99_us"] / 1000.0


def m_mibs(r):
    b = r["wrk"]["requests"] * BODY[r["scenario"]] if r["scenario"] in BODY else r["wrk"]["bytes"]
    return b / secs(r) / MiB


def cpu_s(r):
    return r["cpu_ticks"] / r["clk_tck"]


def m_cpu_req(r):
    return None if r["target"] == "direct" else cpu_s(r) * 1e6 / max(r["wrk"]["requests"], 1)


def m_cpu_gib(r):
    if r["target"] == "direct":
        return None
    b = r["wrk"]["requests"] * BODY[r["scenario"]] if r["scenario"] in BODY else r["wrk"]["bytes"]
    return cpu_s(r) * 1000 / max(b / GiB, 1e-9)


def m_busy(r):
    return None if r["target"] == "direct" else 100.0 * cpu_s(r) / secs(r)


def m_rss_peak(r):
    return None if r["target"] == "direct" or not r["rss"] else r["rss"]["max_kb"] / 1024


def m_rss_start(r):
    return None if r["target"] == "direct" or not r["rss"] else r["rss"]["start_kb"] / 1024


# (scenario, label, metric, fmt, aggregate, higher_is_better)
ROWS = [
    ("preflight", "req/s", m_rps, "{:,.0f}", "median", True),
    ("preflight", "p99 ms", m_p99, "{:.2f}", "median", False),
    ("preflight", "CPU µs/req", m_cpu_req, "{:.1f}", "median", False),
    ("small64", "req/s", m_rps, "{:,.0f}", "median", True),
    ("small64", "p99 ms", m_p99, "{:.2f}", "median", False),
    ("small64", "CPU µs/req", m_cpu_req, "{:.1f}", "median", False),
    ("small512", "req/s", m_rps, "{:,.0f}", "median", True),
    ("small512", "p99 ms", m_p99, "{:.2f}", "median", False),
    ("small512", "CPU µs/req", m_cpu_req, "{:.1f}", "median", False),
    ("small512", "peak RSS MiB", m_rss_peak, "{:.1f}", "max", False),
    ("dl1m", "MiB/s", m_mibs, "{:,.0f}", "median", True),
    ("dl1m", "CPU µs/req", m_cpu_req, "{:,.0f}", "median", False),
    ("dl1m", "CPU ms/GiB", m_cpu_gib, "{:,.0f}", "median", False),
    ("up8m", "MiB/s", m_mibs, "{:,.0f}", "median", True),
    ("up8m", "CPU ms/GiB", m_cpu_gib, "{:,.0f}", "median", False),
    ("dl64m", "MiB/s", m_mibs, "{:,.0f}", "median", True),
    ("dl64m", "CPU ms/GiB", m_cpu_gib, "{:,.0f}", "median", False),
    ("dl64m", "RSS at start MiB", m_rss_start, "{:.1f}", "max", False),
    ("dl64m", "RSS max MiB", m_rss_peak, "{:.1f}", "max", False),
    ("tls-preflight", "req/s", m_rps, "{:,.0f}", "median", True),
    ("tls-preflight", "p99 ms", m_p99, "{:.2f}", "median", False),
    ("tls-preflight", "CPU µs/req", m_cpu_req, "{:.1f}", "median", False),
    ("tls-small64", "req/s", m_rps, "{:,.0f}", "median", True),
    ("tls-small64", "p99 ms", m_p99, "{:.2f}", "median", False),
    ("tls-small64", "CPU µs/req", m_cpu_req, "{:.1f}", "median", False),
    ("h2-preflight", "req/s", m_rps, "{:,.0f}", "median", True),
    ("h2-preflight", "CPU µs/req", m_cpu_req, "{:.1f}", "median", False),
    ("h2-small64", "req/s", m_rps, "{:,.0f}", "median", True),
    ("h2-small64", "CPU µs/req", m_cpu_req, "{:.1f}", "median", False),
    ("h2-small64", "peak RSS MiB", m_rss_peak, "{:.1f}", "max", False),
    ("tls-handshake", "handshakes/s", m_rps, "{:,.0f}", "median", True),
    ("tls-handshake", "p99 ms", m_p99, "{:.2f}", "median", False),
    ("tls-handshake", "CPU µs/handshake", m_cpu_req, "{:.1f}", "median", False),
]


def main():
    raw, out_md, setup = sys.argv[1], sys.argv[2], sys.argv[3]
    notes_file = sys.argv[4] if len(sys.argv) > 4 else None
    runs = load(raw)
    scen_present = [s for s in SCEN if any((s, t) in runs for t in TARGETS)]
    targets = [t for t in TARGETS if any((s, t) in runs for s in scen_present)]
    header = ["scenario", "metric"] + targets + ["cors-proxy / nginx"]
    # The defaults column (no flags, as users run it) and an A/B binary get their own ratios.
    extra = [t for t in ("defaults", "cors-proxy-b") if t in targets]
    header += [f"{t} / nginx" for t in extra]
    if "cors-proxy-b" in targets:
        header.append("cors-proxy / cors-proxy-b")
    # Both with their access log on, as shipped.
    if "defaults" in targets and "nginx-log" in targets:
        header.append("defaults / nginx-log")
    table, summary, footnotes = [], [], []
    busy_rows = []
    for scen, label, fn, fmt, agg, hib in ROWS:
        if scen not in scen_present:
            continue
        row = [SCEN[scen], label]
        vals = {}
        for t in targets:
            rs = runs.get((scen, t), [])
            xs = [v for v in (fn(r) for r in rs) if v is not None]
            if not xs:
                row.append("–")
                continue
            v = statistics.median(xs) if agg == "median" else max(xs)
            vals[t] = v
            mark = "†" if any(errors(r) for r in rs) else ""
            row.append(fmt.format(v) + mark)
        if "cors-proxy" in vals and vals.get("nginx"):
            ratio = vals["cors-proxy"] / vals["nginx"]
            row.append(f"{ratio:.2f}×")
            if label in ("req/s", "MiB/s", "CPU µs/req", "CPU ms/GiB", "peak RSS MiB", "RSS max MiB",
                         "handshakes/s", "CPU µs/handshake"):
                summary.append(f"{SCEN[scen]} {label} {ratio:.2f}")
        else:
            row.append("–")
        for t in extra:
            row.append(f"{vals[t] / vals['nginx']:.2f}×" if t in vals and vals.get("nginx") else "–")
        if "cors-proxy-b" in targets:
            b = vals.get("cors-proxy-b")
            row.append(f"{vals['cors-proxy'] / b:.2f}×" if b and "cors-proxy" in vals else "–")
        if "defaults" in targets and "nginx-log" in targets:
            n = vals.get("nginx-log")
            row.append(f"{vals['defaults'] / n:.2f}×" if n and "defaults" in vals else "–")
        table.append(row)
    for scen in scen_present:
        row = [SCEN[scen], "proxy CPU % of its core"]
        for t in targets:
            xs = [v for v in (m_busy(r) for r in runs.get((scen, t), [])) if v is not None]
            row.append(f"{statistics.median(xs):.0f}%" if xs else "–")
        busy_rows.append(row + [""] * (len(header) - len(row)))
    for (scen, t), rs in sorted(runs.items()):
        for r in rs:
            if errors(r):
                w = r["wrk"]
                footnotes.append(
                    f"† {t} {SCEN[scen]} round {r['round']}: "
                    + ", ".join(f"{k[4:]}={v}" for k, v in w.items() if k.startswith("err_") and v)
                    + f" (of {w['requests']} requests)")

    def render(rows, hdr):
        lines = ["| " + " | ".join(hdr) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(hdr) - 2)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)

    def text(rows, hdr):
        allrows = [hdr] + rows
        w = [max(len(r[i]) for r in allrows) for i in range(len(hdr))]
        out = []
        for i, r in enumerate(allrows):
            out.append("  ".join(c.ljust(w[j]) if j < 2 else c.rjust(w[j]) for j, c in enumerate(r)))
            if i == 0:
                out.append("  ".join("-" * x for x in w))
        return "\n".join(out)

    loads = [r.get("loadavg") for rs in runs.values() for r in rs if r.get("loadavg") is not None]
    if loads:
        setup += (f"; 1-min load average at the start of the runs: min {min(loads):.2f}, "
                  f"median {statistics.median(loads):.2f}, max {max(loads):.2f} "
                  "(the bench itself accounts for ~2-3; more means other processes competed for the 2 cores)")
    summary_line = "cors-proxy/nginx ratios: " + "; ".join(summary)
    print()
    print(f"cors-proxy benchmark — {setup}")
    print(text(table, header))
    print()
    print(text(busy_rows, header))
    for f in footnotes:
        print(f)
    print()
    print(summary_line)
    notes = open(notes_file).read().strip().splitlines() if notes_file else []
    with open(out_md, "w") as f:
        f.write(f"Setup: {setup}. Medians over rounds (RSS: max over rounds). "
                "CPU = utime+stime of the proxy process(es), all threads.\n\n")
        f.write(render(table, header) + "\n\n")
        f.write(render(busy_rows, header) + "\n\n")
        for fn_ in footnotes:
            f.write(fn_ + "  \n")
        f.write("\n" + summary_line + "\n")
        if notes:
            f.write("\nBehaviour outside the benchmark (informational):\n\n")
            for n in notes:
                f.write(f"- {n}\n")


if __name__ == "__main__":
    main()
