"""Shared helpers for scripts/soak.py and scripts/faults.py: start demo-upstream and
cors-proxy (release build) on 127.0.0.1, check responses, sample /proc.

Everything is bounded: every socket has a timeout, every wait a deadline."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BIN_DIR", os.path.join(ROOT, ".build", "release"))
APP = "https://app.example.com"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Child:
    """A child process whose output lines are collected by a thread."""

    def __init__(self, argv, name):
        self.name = name
        self.lines = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     errors="replace")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        # CHILD_LOG_DIR: also keep each child's whole output (sanitizer reports in full).
        log_dir = os.environ.get("CHILD_LOG_DIR")
        tee = open(os.path.join(log_dir, f"{self.name}-{self.proc.pid}.log"), "w") if log_dir else None
        for line in self.proc.stdout:
            if tee:
                tee.write(line)
                tee.flush()
            with self.lock:
                self.lines.append(line.rstrip("\n"))
                if len(self.lines) > 20000:
                    del self.lines[:10000]

    def wait_line(self, pred, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                for l in self.lines:
                    if pred(l):
                        return l
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"{self.name}: no expected line; exit={self.proc.poll()}; output:\n" +
                           "\n".join(self.lines[-30:]))

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def sanitizer_reports(self):
        with self.lock:
            return [l for l in self.lines if "Sanitizer" in l]


def start_upstream(port=0):
    c = Child([os.path.join(BIN, "demo-upstream"), "--listen", f"127.0.0.1:{port}", "--quiet", "--no-record"],
              "demo-upstream")
    line = c.wait_line(lambda l: l.startswith("listening on "))
    c.port = int(line.rsplit(":", 1)[1])
    return c


def conf_text(upstream_port, max_age="10m", admin=True):
    return f"""listen 127.0.0.1:0
{"admin 127.0.0.1:0" if admin else ""}
upstream api {{ url http://127.0.0.1:{upstream_port}; connect_timeout 1s; timeout 5s }}
upstream tight {{ url http://127.0.0.1:{upstream_port}; connect_timeout 1s; timeout 1s }}
max_body_size 1m
cors {{
    allow_origin      {APP} https://*.example.org
    allow_methods     GET HEAD POST PUT DELETE
    allow_headers     Content-Type Authorization X-Custom
    expose_headers    X-Request-Id
    allow_credentials on
    max_age           {max_age}
}}
route /api/ {{ upstream api }}
route /big/ {{ upstream api; max_body_size 0; strip_prefix /big }}
route /tight/ {{ upstream tight; strip_prefix /tight }}
"""


INVALID_CONF = "listen 127.0.0.1:0\nroute /api/ { upstream nowhere }\nallow_origin *\n"


class Proxy:
    def __init__(self, upstream_port, extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="cors-proxy-rel-")
        self.conf = os.path.join(self.dir, "proxy.conf")
        self.upstream_port = upstream_port
        self.write_conf(conf_text(upstream_port))
        self.child = Child([os.path.join(BIN, "cors-proxy"), "serve", "--config", self.conf, "--log-level", "warning",
                            *extra_args], "cors-proxy")
        # The listening lines are logged at info; with --log-level warning, find the port from /proc.
        self.pid = self.child.proc.pid
        self.port = self._wait_port()

    def write_conf(self, text):
        tmp = self.conf + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.conf)

    def _wait_port(self, timeout=20):
        """The proxy's port: of the two listeners, the one whose /healthz is not the admin's 200."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            ports = listening_ports(self.pid)
            if len(ports) >= 2:
                for p in ports:
                    try:
                        c = http.client.HTTPConnection("127.0.0.1", p, timeout=2)
                        c.request("GET", "/healthz")
                        r = c.getresponse()
                        r.read()
                        c.close()
                        if r.status == 200:
                            self.admin_port = p
                    except OSError:
                        pass
                others = [p for p in ports if p != getattr(self, "admin_port", None)]
                if len(others) == 1:
                    return others[0]
            if not self.child.alive():
                break
            time.sleep(0.05)
        raise RuntimeError("cors-proxy did not start:\n" + "\n".join(self.child.lines[-30:]))

    def hup(self):
        os.kill(self.pid, signal.SIGHUP)


def tcp_sockets():
    """(inode, local port, remote port, state) for every TCP socket in /proc/net/tcp and tcp6."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    p = line.split()
                    yield p[9], int(p[1].rsplit(":", 1)[1], 16), int(p[2].rsplit(":", 1)[1], 16), p[3]
        except OSError:
            pass


def listening_ports(pid):
    """TCP ports in LISTEN state owned by pid (via /proc/PID/fd socket inodes)."""
    inodes = socket_inodes(pid)
    return sorted({local for inode, local, _, state in tcp_sockets() if state == "0A" and inode in inodes})


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def threads(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return -1


def settle_fds(pid, baseline, timeout=30):
    deadline = time.time() + timeout
    now = fd_count(pid)
    while now > baseline and time.time() < deadline:
        time.sleep(0.1)
        now = fd_count(pid)
    return now


# --- the demo upstream's byte pattern and hash (from Sources/DemoUpstream) ---

PERIOD = bytes(i % 251 for i in range(251))


def pattern(n):
    reps = n // 251 + 1
    return (PERIOD * reps)[:n]


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


class Outcome:
    OK = "ok"
    EXPECTED_FAIL = "expected_fail"  # 502/504 or a closed connection (docs/DESIGN.md, "Proxy-made responses")
    WRONG = "wrong"  # anything else: a bug


class Ops:
    """The request mix; every op returns (outcome, detail)."""

    def __init__(self, port, upload_sizes=(1024, 64 << 10, 256 << 10), download_sizes=(1024, 64 << 10, 1 << 20)):
        self.port = port
        self.uploads = {n: (os.urandom(n), None) for n in upload_sizes}
        self.uploads = {n: (b, fnv1a64(b)) for n, (b, _) in self.uploads.items()}
        self.downloads = {n: pattern(n) for n in download_sizes}
        self.local = threading.local()

    def conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
            self.local.conn = c
        return c

    def drop(self):
        c = getattr(self.local, "conn", None)
        if c is not None:
            c.close()
        self.local.conn = None

    def exchange(self, method, path, headers=None, body=None):
        """(status, headers, body) or raises OSError/HTTPException on a broken connection."""
        c = self.conn()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            if r.getheader("Connection", "").lower() == "close":
                self.drop()
            return r.status, r, data
        except Exception:
            self.drop()
            raise

    def run(self, op, arg=None):
        try:
            return getattr(self, "op_" + op)(arg)
        except (OSError, http.client.HTTPException) as e:
            return Outcome.EXPECTED_FAIL, f"closed: {type(e).__name__}"

    def warm_up(self, mix, clients):
        """Runs `mix` three times on each of `clients` threads and drops their connections, so
        the allocator and curl's pools settle before a baseline is taken."""
        def warm():
            for op, arg in mix * 3:
                self.run(op, arg)
            self.drop()
        workers = [threading.Thread(target=warm) for _ in range(clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
        time.sleep(1)

    @staticmethod
    def failed_status(status, what):
        if status in (502, 504):
            return Outcome.EXPECTED_FAIL, f"{status}"
        return Outcome.WRONG, f"{what}: status {status}"

    def op_preflight(self, _):
        s, r, data = self.exchange("OPTIONS", "/api/items", {
            "Origin": APP, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "x-custom"})
        if s != 204 or r.getheader("Access-Control-Allow-Origin") != APP or data:
            return Outcome.WRONG, f"preflight: {s} {r.getheader('Access-Control-Allow-Origin')}"
        return Outcome.OK, ""

    def op_get(self, _):
        s, r, data = self.exchange("GET", "/api/items", {"Origin": APP})
        if s != 200:
            return self.failed_status(s, "GET /api/items")
        try:
            items = json.loads(data)
        except ValueError:
            return Outcome.WRONG, f"GET /api/items: body not JSON: {data[:80]!r}"
        if len(items) != 3 or r.getheader("Access-Control-Allow-Origin") != APP:
            return Outcome.WRONG, f"GET /api/items: {len(items)} items, ACAO {r.getheader('Access-Control-Allow-Origin')}"
        return Outcome.OK, ""

    def op_upload(self, n):
        body, digest = self.uploads[n]
        s, r, data = self.exchange("POST", "/big/upload", {"Origin": APP, "Content-Type": "application/octet-stream"},
                                   body)
        if s != 200:
            return self.failed_status(s, "POST /big/upload")
        got = json.loads(data)
        if got.get("bytes") != n or got.get("fnv1a64") != digest:
            return Outcome.WRONG, f"upload {n}: upstream saw {got}"
        return Outcome.OK, ""

    def op_download(self, n):
        s, r, data = self.exchange("GET", f"/big/bytes/{n}", {"Origin": APP})
        if s != 200:
            return self.failed_status(s, "GET /big/bytes")
        if data != self.downloads[n]:
            return Outcome.WRONG, f"download {n}: {len(data)} bytes, content differs"
        return Outcome.OK, ""

    def op_slow(self, ms):
        s, r, data = self.exchange("GET", f"/api/slow/{ms}")
        if s != 200:
            return self.failed_status(s, "GET /api/slow")
        if json.loads(data).get("slept_ms") != ms:
            return Outcome.WRONG, f"slow: {data[:80]!r}"
        return Outcome.OK, ""

    def op_timeout(self, _):
        # The `tight` upstream has a 1 s idle timeout: /slow/3000 must be a 504.
        s, r, data = self.exchange("GET", "/tight/slow/3000", {"Origin": APP})
        if s == 504 and r.getheader("Access-Control-Allow-Origin") == APP:
            return Outcome.EXPECTED_FAIL, "504"
        if s == 502:
            return Outcome.EXPECTED_FAIL, "502"
        return Outcome.WRONG, f"timeout: {s} ACAO {r.getheader('Access-Control-Allow-Origin')}"

    def op_reset(self, _):
        # Reset mid-body: an incomplete response (the connection closes), never a complete-looking one.
        try:
            s, r, data = self.exchange("GET", "/api/reset-mid-body")
        except (OSError, http.client.HTTPException) as e:
            return Outcome.EXPECTED_FAIL, "cut mid-body"
        if s == 502:
            return Outcome.EXPECTED_FAIL, "502"
        return Outcome.WRONG, f"reset-mid-body looked complete: {s}, {len(data)} bytes"


def abort_upload(port, total=8 << 20, sent=256 << 10):
    """Announces `total` bytes, sends `sent`, vanishes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(f"POST /big/upload HTTP/1.1\r\nHost: x\r\nContent-Length: {total}\r\n\r\n".encode())
        s.sendall(pattern(sent))
    except OSError:
        pass
    finally:
        s.close()


def abort_download(port, size=64 << 20, read=512 << 10):
    """Asks for `size` bytes, reads about `read`, vanishes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    got = 0
    try:
        s.sendall(f"GET /big/bytes/{size} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        while got < read:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += len(chunk)
    except OSError:
        pass
    finally:
        s.close()
    return got


def socket_inodes(pid):
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                m = re.match(r"socket:\[(\d+)\]", os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                continue
            if m:
                inodes.add(m.group(1))
    except OSError:
        pass
    return inodes


def upstream_connections(pid, upstream_port):
    """Open TCP connections of pid to 127.0.0.1:upstream_port (curl's keep-alive pool)."""
    inodes = socket_inodes(pid)
    return sum(1 for inode, _, remote, _ in tcp_sockets() if inode in inodes and remote == upstream_port)


def own_fds(pid, upstream_port):
    """Descriptors other than pooled upstream connections: must return to the baseline exactly."""
    return fd_count(pid) - upstream_connections(pid, upstream_port)


def settle_own_fds(pid, upstream_port, baseline, timeout=30):
    deadline = time.time() + timeout
    now = own_fds(pid, upstream_port)
    while now > baseline and time.time() < deadline:
        time.sleep(0.1)
        now = own_fds(pid, upstream_port)
    return now


TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
              "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}


def describe_fds(pid):
    """fd -> description; sockets with their TCP endpoints and state (or 'not in /proc/net/tcp')."""
    table = {inode: f"tcp :{local} -> :{remote} {TCP_STATES.get(state, state)}"
             for inode, local, remote, state in tcp_sockets()}
    out = {}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in sorted(fds, key=int):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", target)
        out[int(fd)] = table.get(m.group(1), target + " (not in /proc/net/tcp: unix, or a TCP socket already reset)") \
            if m else target
    return out


def replace_doc_block(name, block):
    """Writes `block` (which starts with <!-- NAME:BEGIN and ends with <!-- NAME:END -->) into
    docs/RELIABILITY.md, replacing the previous block of that name or appending it."""
    doc = os.path.join(ROOT, "docs", "RELIABILITY.md")
    begin, end_marker = f"<!-- {name}:BEGIN", f"<!-- {name}:END -->"
    text = open(doc).read() if os.path.exists(doc) else "# Reliability\n"
    if begin in text:
        a = text.index(begin)
        b = text.index(end_marker) + len(end_marker)
        text = text[:a] + block + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(doc, "w") as fh:
        fh.write(text)

