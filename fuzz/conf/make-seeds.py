#!/usr/bin/env python3
"""Writes the conf fuzzer's seed corpus: proxy.conf.example, Tests/Fixtures/*.conf, the
bench/deploy confs, and every conf-looking string literal in the tests (multi-line \"\"\"
literals and one-line literals that hold a directive), one file per seed.

Usage: fuzz/conf/make-seeds.py OUT_DIR   (run from the repository root)"""
import glob, hashlib, os, re, sys

out = sys.argv[1]
if len(sys.argv) > 2 and sys.argv[2] == "--slots":
    # Seeds for CONF_FUZZ_MODE=slots: a selector byte (template index) and a value.
    values = ["https://app.example.com", "https://*.example.com", "~^https://[a-z]+\\.example\\.com$", "null", "*",
              "https://[::1]:8443", "http://localhost:0", "(?i)a|b", "[[:alpha:]]+", "a{2,3}?", "\\p{L}+", "(?<n>x)\\k<n>",
              "GET PUT X-Custom", "10m", "1500ms", "64k", "1g", "0", "http://127.0.0.1:3000/base", "https://u:p@h/",
              "127.0.0.1:8080", "[::]:80", "/api/", "\"quoted \\\" value\"", "enforce report", "preflight_status 200",
              "API_URL", "X:-default", "cors off", "allow_private_network on"]
    os.makedirs(out, exist_ok=True)
    n = 0
    for sel in range(17):
        for v in values:
            with open(os.path.join(out, f"slot-{sel}-{n}"), "wb") as f:
                f.write(bytes([sel]) + v.encode())
            n += 1
    print(f"{n} slot seeds in {out}")
    sys.exit(0)
os.makedirs(out, exist_ok=True)
seeds = []
for path in ["proxy.conf.example", "bench/proxy.conf"] + sorted(glob.glob("Tests/Fixtures/*.conf")) \
        + sorted(glob.glob("deploy/**/*.conf", recursive=True)):
    if os.path.isfile(path):
        seeds.append(open(path, encoding="utf-8", errors="replace").read())

DIRECTIVE = re.compile(r"\b(listen|upstream|route|allow_origin|cors|max_body_size|admin|self_origin|drain_timeout)\b")
for path in sorted(glob.glob("Tests/**/*.swift", recursive=True)):
    src = open(path, encoding="utf-8").read()
    # Multi-line literals: strip the closing delimiter's indentation, as Swift does.
    for m in re.finditer(r'"""\n(.*?)\n([ \t]*)"""', src, re.S):
        body, indent = m.group(1), m.group(2)
        text = "\n".join(l[len(indent):] if l.startswith(indent) else l.lstrip() for l in body.split("\n"))
        if DIRECTIVE.search(text):
            seeds.append(text + "\n")
    # One-line literals (escape sequences kept simple: \n \t \" \\).
    for m in re.finditer(r'(?<!")"((?:[^"\\\n]|\\.)*)"(?!")', src):
        text = m.group(1)
        if DIRECTIVE.search(text) and len(text) > 8:
            text = text.replace("\\n", "\n").replace("\\t", "\t").replace('\\"', '"').replace("\\\\", "\\")
            text = re.sub(r"\\\(head\)", "listen 127.0.0.1:0\nupstream api http://127.0.0.1:3000\n", text)
            seeds.append(text)

seen = set()
for s in seeds:
    data = s.encode("utf-8")
    h = hashlib.sha1(data).hexdigest()
    if h in seen:
        continue
    seen.add(h)
    with open(os.path.join(out, h), "wb") as f:
        f.write(data)
print(f"{len(seen)} seeds in {out}")
