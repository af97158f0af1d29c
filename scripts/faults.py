#!/usr/bin/env python3
"""Faults under load (make faults): while FAULTS_CLIENTS keep-alive clients drive a checked mix
(GET, preflight, 64 KiB upload, 64 KiB download, 100 ms slow) through the release cors-proxy:

  - the upstream is SIGKILLed and restarted on the same port every FAULTS_KILL_EVERY s (down ~1 s);
  - requests to /tight/slow/3000 (a 1 s upstream timeout: 504), /api/reset-mid-body (RST mid-body:
    an incomplete response), client aborts mid-upload and mid-download run all the time;
  - SIGHUP every second, alternating a valid conf (max_age toggling 10m/11m) and an invalid one.

Afterwards: the proxy is alive, its descriptors (other than pooled upstream connections) are back
at the baseline, RSS is reported against the baseline, every completed response was correct, and
every failure was a 502/504 or a closed connection inside a fault window (lost = failures of the
plain mix outside the upstream's down windows; must be 0). FAULTS_SECONDS (default 120).
Writes .build/faults.json and the FAULTS block of docs/RELIABILITY.md (FAULTS_DOC=0: not)."""
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reliability import (APP, INVALID_CONF, ROOT, Ops, Outcome, Proxy, abort_download, abort_upload, replace_doc_block,  # noqa: E402
                         conf_text, describe_fds, fd_count, free_port, own_fds, rss_kib, settle_own_fds, start_upstream,
                         upstream_connections)

SECONDS = int(os.environ.get("FAULTS_SECONDS", "120"))
CLIENTS = int(os.environ.get("FAULTS_CLIENTS", "4"))
KILL_EVERY = float(os.environ.get("FAULTS_KILL_EVERY", "6"))
GRACE = 1.0  # seconds after the upstream is back during which a failure still counts as the fault's
MIX = [("get", None), ("preflight", None), ("upload", 64 << 10), ("download", 64 << 10), ("get", None),
       ("slow", 100), ("download", 1024), ("upload", 1024)]


def main():
    port = free_port()
    state = {"upstream": start_upstream(port)}
    proxy = Proxy(port)
    pid = proxy.pid
    ops = Ops(proxy.port, upload_sizes=(1024, 64 << 10), download_sizes=(1024, 64 << 10))

    ops.warm_up(MIX, CLIENTS)
    base_fd, base_rss, base_all = own_fds(pid, port), rss_kib(pid), fd_count(pid)
    fds_before = describe_fds(pid)
    print(f"faults: {SECONDS}s, {CLIENTS} clients; baseline RSS {base_rss} KiB, {base_fd} FDs "
          f"(+{base_all - base_fd} pooled upstream)", flush=True)

    lock = threading.Lock()
    records = []  # (start, end, op, outcome, detail)
    windows = []  # [down_at, back_at or None]
    faults = {"upstream_kills": 0, "upstream_restarts": 0, "sighup_valid": 0, "sighup_invalid": 0, "timeouts_504": 0,
              "resets_mid_body": 0, "aborted_uploads": 0, "aborted_downloads": 0, "fault_wrong": 0}
    fault_wrong = []
    max_ages = {}
    stop_at = time.time() + SECONDS
    stopping = threading.Event()

    def load(k):
        i = k * 3
        while time.time() < stop_at:
            op, arg = MIX[i % len(MIX)]
            i += 1
            t0 = time.time()
            if op == "preflight":
                outcome, detail = preflight()
            else:
                outcome, detail = ops.run(op, arg)
            with lock:
                records.append((t0, time.time(), f"{op}{'' if arg is None else ' ' + str(arg)}", outcome, detail))
        ops.drop()

    def preflight():
        try:
            s, r, data = ops.exchange("OPTIONS", "/api/items", {"Origin": APP, "Access-Control-Request-Method": "PUT"})
        except Exception as e:  # noqa: BLE001
            return Outcome.EXPECTED_FAIL, f"closed: {type(e).__name__}"
        age = r.getheader("Access-Control-Max-Age")
        with lock:
            max_ages[age] = max_ages.get(age, 0) + 1
        if s != 204 or r.getheader("Access-Control-Allow-Origin") != APP or age not in ("600", "660"):
            return Outcome.WRONG, f"preflight: {s} max-age {age}"
        return Outcome.OK, ""

    def killer():
        while not stopping.wait(KILL_EVERY):
            if time.time() > stop_at - 3:
                break
            with lock:
                windows.append([time.time(), None])
            state["upstream"].stop(signal.SIGKILL)
            faults["upstream_kills"] += 1
            time.sleep(1.0)
            for attempt in range(50):
                try:
                    state["upstream"] = start_upstream(port)
                    break
                except RuntimeError:
                    time.sleep(0.1)
            else:
                raise RuntimeError("the upstream could not be restarted")
            faults["upstream_restarts"] += 1
            with lock:
                windows[-1][1] = time.time()

    def fault_ops():
        fops = Ops(proxy.port, upload_sizes=(), download_sizes=())
        n = 0
        while time.time() < stop_at:
            n += 1
            kind = n % 4
            if kind == 0:
                outcome, detail = fops.run("timeout")
                faults["timeouts_504"] += 1
            elif kind == 1:
                outcome, detail = fops.run("reset")
                faults["resets_mid_body"] += 1
            elif kind == 2:
                abort_upload(proxy.port)
                faults["aborted_uploads"] += 1
                outcome = Outcome.EXPECTED_FAIL
            else:
                abort_download(proxy.port)
                faults["aborted_downloads"] += 1
                outcome = Outcome.EXPECTED_FAIL
            if outcome == Outcome.WRONG:
                faults["fault_wrong"] += 1
                fault_wrong.append(detail)
            time.sleep(0.05)
        fops.drop()

    def hupper():
        k = 0
        while not stopping.wait(1.0):
            if time.time() > stop_at:
                break
            k += 1
            if k % 2:
                proxy.write_conf(INVALID_CONF)
                faults["sighup_invalid"] += 1
            else:
                proxy.write_conf(conf_text(port, max_age="11m" if k % 4 == 0 else "10m"))
                faults["sighup_valid"] += 1
            proxy.hup()
        proxy.write_conf(conf_text(port))
        proxy.hup()

    threads = [threading.Thread(target=load, args=(k,), daemon=True) for k in range(CLIENTS)]
    threads += [threading.Thread(target=f, daemon=True) for f in (killer, fault_ops, hupper)]
    t_start = time.time()
    for t in threads:
        t.start()
    while time.time() < stop_at and proxy.child.alive():
        time.sleep(0.5)
    stopping.set()
    for t in threads:
        t.join(60)
    elapsed = time.time() - t_start
    if windows and windows[-1][1] is None:
        windows[-1][1] = time.time()

    # Verdicts.
    def in_window(a, b):
        return any(a <= (w1 + GRACE) and b >= w0 for w0, w1 in windows)

    counts = {"served_ok": 0, "failed_in_fault_window": 0, "lost": 0, "wrong": 0}
    lost, wrong = [], []
    for a, b, op, outcome, detail in records:
        if outcome == Outcome.OK:
            counts["served_ok"] += 1
        elif outcome == Outcome.WRONG:
            counts["wrong"] += 1
            wrong.append(f"{op}: {detail}")
        elif in_window(a, b):
            counts["failed_in_fault_window"] += 1
        else:
            counts["lost"] += 1
            lost.append(f"t={a - t_start:.2f}s {op}: {detail}")
    alive = proxy.child.alive()
    # After: the plain mix works again.
    after_ok = all(ops.run(op, arg)[0] == Outcome.OK for op, arg in MIX) if alive else False
    ops.drop()
    end_fd = settle_own_fds(pid, port, base_fd) if alive else -1
    fds_after = describe_fds(pid)
    extra = {fd: d for fd, d in fds_after.items() if fds_before.get(fd) != d}
    time.sleep(1)
    end_rss = rss_kib(pid)
    pool = upstream_connections(pid, port)
    log = list(proxy.child.lines)
    reload_refused = sum(1 for l in log if "reload refused" in l)
    sanitizer = proxy.child.sanitizer_reports()
    proxy.child.stop()
    state["upstream"].stop()

    result = {"seconds": round(elapsed), "clients": CLIENTS, "requests": len(records), "counts": counts,
              "faults": faults, "fault_wrong": fault_wrong[:20], "lost": lost[:30], "wrong": wrong[:30],
              "preflight_max_age_seen": max_ages, "reload_refused_logged": reload_refused, "alive": alive,
              "after_ok": after_ok, "baseline": {"rss_kib": base_rss, "fds": base_fd},
              "end": {"rss_kib": end_rss, "fds": end_fd, "pooled_upstream": pool}, "sanitizer": sanitizer[:10],
              "fds_changed": {str(k): v for k, v in extra.items()}, "fds_before": {str(k): v for k, v in fds_before.items()}}
    os.makedirs(os.path.join(ROOT, ".build"), exist_ok=True)
    with open(os.path.join(ROOT, ".build", "faults.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))
    rss_ok = end_rss <= base_rss + 64 * 1024
    ok = (alive and after_ok and counts["wrong"] == 0 and counts["lost"] == 0 and faults["fault_wrong"] == 0
          and end_fd <= base_fd and rss_ok and not sanitizer)
    if os.environ.get("FAULTS_DOC", "1") == "1":
        write_doc(result, ok)
    print("faults: " + ("PASS" if ok else "FAIL"))
    sys.exit(0 if ok else 1)


def write_doc(r, ok):
    c, f = r["counts"], r["faults"]
    lines = ["<!-- FAULTS:BEGIN (written by scripts/faults.py) -->",
             f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {r['seconds']} s, {r['clients']} clients, "
             f"release build, verdict **{'PASS' if ok else 'FAIL'}**.", "",
             "| faults injected | count |", "|---|---:|"]
    for k, v in f.items():
        lines.append(f"| {k.replace('_', ' ')} | {v} |")
    lines += ["", "| requests of the checked mix | count |", "|---|---:|",
              f"| total | {r['requests']} |", f"| served, correct | {c['served_ok']} |",
              f"| failed (502/504/closed) while the upstream was down or restarting | {c['failed_in_fault_window']} |",
              f"| **lost** (failed outside a fault window) | **{c['lost']}** |", f"| wrong (bad status or body) | {c['wrong']} |",
              "",
              f"- preflight `Access-Control-Max-Age` seen (the SIGHUPs took effect): {r['preflight_max_age_seen']}; "
              f"invalid confs refused and logged: {r['reload_refused_logged']}",
              f"- proxy alive afterwards: {r['alive']}; the plain mix correct afterwards: {r['after_ok']}",
              f"- FDs (other than pooled upstream connections): {r['baseline']['fds']} before, {r['end']['fds']} after; "
              f"pooled upstream connections after: {r['end']['pooled_upstream']}",
              f"- RSS: {r['baseline']['rss_kib']} KiB before, {r['end']['rss_kib']} KiB after",
              "<!-- FAULTS:END -->"]
    replace_doc_block("FAULTS", "\n".join(lines))

if __name__ == "__main__":
    main()
