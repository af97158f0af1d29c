#!/usr/bin/python3
"""A raw HTTP/2-over-TLS client for the integration tests: frames written by hand, so it can
send what a client library refuses to (floods, resets, malformed requests), and print what the
server sent back as JSON.

    h2raw.py --port N [--ca FILE] SCENARIO [options]

Runs with Debian's /usr/bin/python3 (its ssl module with ALPN, and python3-hpack to decode the
server's header blocks: `scripts/ensure-deps.sh test` installs it). Requests are encoded as
HPACK literals without indexing and without Huffman coding, so a header block is exactly as
large as it looks. Only ever connects to 127.0.0.1.

Scenarios (each prints one JSON object on the last line of stdout; `--live` scenarios also
print one JSON line per event as it happens; --out FILE writes the final object to FILE too):

  request        the requests of --request (repeatable: METHOD PATH), each on its own stream
                 of one connection, at once; waits for every stream to end
  rapid-reset    --count N times HEADERS and RST_STREAM(CANCEL) in one write (CVE-2023-44487)
  continuation   HEADERS without END_HEADERS and --count CONTINUATION frames
  hpack-bomb     one 4 KiB dynamic-table entry referenced --count times
  stream-flood   --count POST streams left open (no END_STREAM)
  malformed      --kind uppercase|connection|content-length, then a good GET on stream 3
  reset-one      stream 1 downloads --path while its window stays shut, stream 3 asks --other;
                 once stream 1 has its head, RST_STREAM(CANCEL) on it; reports the upstream's
                 open connections (--upstream-port's /__stats) before and after the reset
  drain          --live: one GET of --path; prints each frame as it arrives
  hold           --live: GET --path, then waits for --wait-file to exist and GETs it again on
                 the same connection
  handshake      a TLS handshake only (--tls-max 1.1|1.2|1.3, --alpn), reports the outcome, the
                 ALPN protocol and the server certificate's serial number
"""
import argparse
import json
import os
import socket
import ssl
import sys
import time
import http.client

import hpack

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
START = time.monotonic()


def now():
    return round(time.monotonic() - START, 3)


def frame(kind, flags, stream, payload=b""):
    n = len(payload)
    return bytes([n >> 16 & 0xFF, n >> 8 & 0xFF, n & 0xFF, kind, flags]) + (stream & 0x7FFFFFFF).to_bytes(4, "big") + payload


def integer(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def literal(name, value):
    """A literal header field without indexing, new name, no Huffman coding."""
    name, value = name.encode(), value.encode()
    return b"\x00" + integer(len(name), 7) + name + integer(len(value), 7) + value


def header_block(fields):
    return b"".join(literal(n, v) for n, v in fields)


def request_fields(method, path, port, extra=()):
    return [(":method", method), (":scheme", "https"), (":authority", f"127.0.0.1:{port}"), (":path", path)] + list(extra)


class Connection:
    def __init__(self, port, ca=None, settings=(), connection_window=1 << 30):
        self.port = port
        self.events = []
        self.live = False
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 20
        self.pending = b""
        self.block = b""
        self.block_stream = None
        self.closed = False
        self.hold_window = set()  # streams whose window is not replenished
        self.data = {}  # stream -> bytes of DATA received
        self.ended = set()
        self.reset = {}
        self.goaways = []
        self.status = {}
        self.headers = {}
        context = tls_context(ca)
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock = context.wrap_socket(raw, server_hostname="127.0.0.1" if ca else None)
        if self.sock.selected_alpn_protocol() != "h2":
            raise SystemExit(f"ALPN gave {self.sock.selected_alpn_protocol()!r}, not h2")
        payload = b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in settings)
        self.send(PREFACE + frame(SETTINGS, 0, 0, payload))
        if connection_window > 65535:
            self.send(frame(WINDOW_UPDATE, 0, 0, (connection_window - 65535).to_bytes(4, "big")))
        # The server's SETTINGS take effect when it reads our ACK (RFC 9113 6.5.3); until then
        # NIOHTTP2 holds the peer to its defaults. Waiting for them here makes every scenario
        # meet the limits the proxy announces (100 streams, the header list size), not the defaults.
        self.server_settings = None
        self.pump(lambda: self.server_settings is not None, 10)
        if self.server_settings is None:
            raise SystemExit("no SETTINGS from the server")

    def serial(self):
        cert = self.sock.getpeercert()
        return cert.get("serialNumber") if cert else None

    def send(self, data):
        """Sends `data` in one write (one TLS record up to 16 KiB); False once the server is gone."""
        try:
            self.sock.sendall(data)
            return True
        except (OSError, ssl.SSLError):
            self.note({"type": "closed", "by": "send"})
            self.closed = True
            return False

    def request(self, stream, method, path, extra=(), end_stream=True, body=None):
        flags = END_HEADERS | (END_STREAM if end_stream and body is None else 0)
        out = frame(HEADERS, flags, stream, header_block(request_fields(method, path, self.port, extra)))
        if body is not None:
            out += frame(DATA, END_STREAM, stream, body)
        return self.send(out)

    def note(self, event):
        event["t"] = now()
        self.events.append(event)
        if self.live:
            print(json.dumps(event), flush=True)

    def read_frame(self, deadline):
        while len(self.pending) < 9 or len(self.pending) < 9 + int.from_bytes(self.pending[:3], "big"):
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except (OSError, ssl.SSLError) as error:
                self.note({"type": "closed", "by": "error", "error": str(error)})
                self.closed = True
                return None
            if not chunk:
                self.note({"type": "closed", "by": "eof"})
                self.closed = True
                return None
            self.pending += chunk
        n = int.from_bytes(self.pending[:3], "big")
        kind, flags = self.pending[3], self.pending[4]
        stream = int.from_bytes(self.pending[5:9], "big") & 0x7FFFFFFF
        payload = self.pending[9 : 9 + n]
        self.pending = self.pending[9 + n :]
        return kind, flags, stream, payload

    def pump(self, until, timeout):
        """Handles frames until `until()` holds, the connection closes, or `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while not until() and not self.closed:
            got = self.read_frame(deadline)
            if got is None:
                return until()
            self.handle(*got)
        return until()

    def handle(self, kind, flags, stream, payload):
        if kind == SETTINGS and not flags & ACK:
            self.server_settings = {int.from_bytes(payload[i : i + 2], "big"): int.from_bytes(payload[i + 2 : i + 6], "big")
                                    for i in range(0, len(payload) - 5, 6)}
            self.send(frame(SETTINGS, ACK, 0))
        elif kind == PING and not flags & ACK:
            self.send(frame(PING, ACK, 0, payload))
        elif kind in (HEADERS, CONTINUATION):
            if kind == HEADERS:
                if flags & 0x8:  # PADDED
                    payload = payload[1 : len(payload) - payload[0]]
                if flags & 0x20:  # PRIORITY
                    payload = payload[5:]
                self.block, self.block_stream, self.block_end = b"", stream, bool(flags & END_STREAM)
            self.block += payload
            if flags & END_HEADERS:
                fields = self.decoder.decode(self.block)
                self.block = b""
                status = next((v for n, v in fields if n == ":status"), None)
                if stream not in self.status and status is not None:
                    self.status[stream] = int(status)
                    self.headers[stream] = [[n, v] for n, v in fields]
                self.note({"type": "headers", "stream": stream, "status": int(status) if status else None,
                           "end": self.block_end})
                if self.block_end:
                    self.ended.add(stream)
        elif kind == DATA:
            window = len(payload)  # flow control counts the whole payload, padding included
            if flags & 0x8:
                payload = payload[1 : len(payload) - payload[0]]
            self.data[stream] = self.data.get(stream, 0) + len(payload)
            if self.live:
                self.note({"type": "data", "stream": stream, "length": len(payload), "end": bool(flags & END_STREAM)})
            if flags & END_STREAM:
                self.ended.add(stream)
                if not self.live:
                    self.note({"type": "end", "stream": stream, "bytes": self.data[stream]})
            if window:
                update = window.to_bytes(4, "big")
                out = frame(WINDOW_UPDATE, 0, 0, update)
                if stream not in self.hold_window and not flags & END_STREAM:
                    out += frame(WINDOW_UPDATE, 0, stream, update)
                self.send(out)
        elif kind == RST_STREAM:
            code = int.from_bytes(payload[:4], "big")
            self.reset[stream] = code
            self.note({"type": "rst", "stream": stream, "code": code})
        elif kind == GOAWAY:
            last = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            code = int.from_bytes(payload[4:8], "big")
            self.goaways.append(code)
            self.note({"type": "goaway", "last": last, "code": code})

    def done(self, stream):
        return stream in self.ended or stream in self.reset

    def summary(self, **extra):
        out = {
            "status": {str(k): v for k, v in self.status.items()},
            "headers": {str(k): v for k, v in self.headers.items()},
            "bytes": {str(k): v for k, v in self.data.items()},
            "ended": sorted(self.ended),
            "reset": {str(k): v for k, v in self.reset.items()},
            "goaway": self.goaways,
            "closed": self.closed,
        }
        out.update(extra)
        return out


def tls_context(ca, maximum=None):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca:
        context.load_verify_locations(ca)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if maximum:
        version = {"1.1": ssl.TLSVersion.TLSv1_1, "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[maximum]
        if version < ssl.TLSVersion.TLSv1_2:
            # OpenSSL 3 refuses TLS 1.0/1.1 at its default security level.
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = version
        context.maximum_version = version
    return context


def upstream_open_connections(port):
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    client.request("GET", "/__stats")
    stats = json.loads(client.getresponse().read())
    client.close()
    return stats["open_connections"] - 1  # less the connection that asks


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--path", default="/api/items")
    parser.add_argument("--other", default="/api/items")
    parser.add_argument("--kind")
    parser.add_argument("--request", nargs=2, action="append", metavar=("METHOD", "PATH"))
    parser.add_argument("--upstream-port", type=int)
    parser.add_argument("--wait-file")
    parser.add_argument("--tls-max")
    parser.add_argument("--alpn", default="h2,http/1.1")
    parser.add_argument("--timeout", type=float, default=10)
    parser.add_argument("--live", action="store_true")
    parser.add_argument("--out", help="also write the final JSON object to this file")
    a = parser.parse_args()

    def finish(summary):
        text = json.dumps(summary)
        print(text, flush=True)
        if a.out:
            with open(a.out + ".tmp", "w") as f:
                f.write(text + "\n")
            os.replace(a.out + ".tmp", a.out)

    if a.scenario == "handshake":
        context = tls_context(a.ca, a.tls_max)
        context.set_alpn_protocols(a.alpn.split(","))
        raw = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
        try:
            sock = context.wrap_socket(raw, server_hostname="127.0.0.1" if a.ca else None)
        except (OSError, ssl.SSLError) as error:
            finish({"handshake": "failed", "error": str(error)})
            return
        cert = sock.getpeercert() if a.ca else None
        finish({"handshake": "ok", "version": sock.version(), "alpn": sock.selected_alpn_protocol(),
                "serial": cert.get("serialNumber") if cert else None})
        sock.close()
        return

    c = Connection(a.port, a.ca)
    c.live = a.live
    port = a.port

    if a.scenario == "request":
        streams = []
        for i, (method, path) in enumerate(a.request or [["GET", a.path]]):
            stream = 2 * i + 1
            c.request(stream, method, path)
            streams.append(stream)
        c.pump(lambda: all(c.done(s) for s in streams), a.timeout)
        finish(c.summary())

    elif a.scenario == "rapid-reset":
        sent = 0
        for i in range(a.count):
            stream = 2 * i + 1
            pair = frame(HEADERS, END_HEADERS | END_STREAM, stream, header_block(request_fields("GET", a.path, port)))
            pair += frame(RST_STREAM, 0, stream, (8).to_bytes(4, "big"))
            if not c.send(pair):
                break
            sent += 1
        c.pump(lambda: False, a.timeout)
        finish(c.summary(sent=sent))

    elif a.scenario == "continuation":
        out = frame(HEADERS, 0, 1, header_block(request_fields("GET", a.path, port)))
        for _ in range(a.count):
            out += frame(CONTINUATION, 0, 1, literal("x-a", "b"))
        sent = 0
        for offset in range(0, len(out), 16384):
            if not c.send(out[offset : offset + 16384]):
                break
            sent = offset + 16384
        c.pump(lambda: False, a.timeout)
        finish(c.summary(sent_bytes=min(sent, len(out)), total_bytes=len(out)))

    elif a.scenario == "hpack-bomb":
        # One 4 KB entry added to the dynamic table (literal with incremental indexing; 4,037
        # bytes as HPACK counts it, within the default 4,096-byte table), then referenced
        # (index 62, one byte each) --count times.
        block = header_block(request_fields("GET", a.path, port))
        block += b"\x40" + integer(5, 7) + b"x-big" + integer(4000, 7) + b"a" * 4000
        block += b"\xbe" * a.count
        c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
        c.pump(lambda: False, a.timeout)
        finish(c.summary(block_bytes=len(block), decoded_bytes=(4000 + 5 + 32) * (a.count + 1)))

    elif a.scenario == "stream-flood":
        out = b""
        for i in range(a.count):
            out += frame(HEADERS, END_HEADERS, 2 * i + 1, header_block(request_fields("POST", a.path, port)))
        c.send(out)
        last = 2 * (a.count - 1) + 1
        c.pump(lambda: last in c.reset or bool(c.goaways), a.timeout)
        # The streams the server took are still open; a PING round trip shows the connection alive.
        c.send(frame(PING, 0, 0, b"12345678"))
        pong = {"seen": False}
        original = c.handle

        def watch(kind, flags, stream, payload):
            if kind == PING and flags & ACK:
                pong["seen"] = True
            original(kind, flags, stream, payload)

        c.handle = watch
        c.pump(lambda: pong["seen"], 5)
        finish(c.summary(ping_answered=pong["seen"]))

    elif a.scenario == "malformed":
        extra = {
            "uppercase": [("X-Upper", "1")],
            "connection": [("connection", "keep-alive")],
            "transfer-encoding": [("transfer-encoding", "chunked")],
            "content-length": [("content-length", "10")],
        }[a.kind]
        if a.kind == "content-length":
            c.request(1, "POST", a.path, extra, body=b"abc")
        else:
            c.request(1, "GET", a.path, extra)
        c.pump(lambda: c.done(1), a.timeout)
        c.request(3, "GET", a.other)
        c.pump(lambda: c.done(3), a.timeout)
        finish(c.summary())

    elif a.scenario == "reset-one":
        c.hold_window.add(1)
        c.request(1, "GET", a.path)
        c.pump(lambda: 1 in c.status, a.timeout)
        c.request(3, "GET", a.other)
        # Both upstream requests are in flight: stream 1's transfer is paused (its window is
        # shut), stream 3's is waiting for its slow answer.
        deadline = time.monotonic() + a.timeout
        before = upstream_open_connections(a.upstream_port)
        while before < 2 and time.monotonic() < deadline:
            c.pump(lambda: False, 0.05)
            before = upstream_open_connections(a.upstream_port)
        c.send(frame(RST_STREAM, 0, 1, (8).to_bytes(4, "big")))
        c.note({"type": "reset-sent", "stream": 1})
        after = before
        while after >= before and time.monotonic() < deadline:
            c.pump(lambda: False, 0.05)
            after = upstream_open_connections(a.upstream_port)
        c.pump(lambda: c.done(3), a.timeout)
        finish(c.summary(upstream_before=before, upstream_after=after))

    elif a.scenario == "drain":
        c.request(1, "GET", a.path)
        c.pump(lambda: c.done(1), a.timeout)
        # After the stream: whatever else comes until the server closes.
        c.pump(lambda: False, a.timeout)
        finish(c.summary())

    elif a.scenario == "hold":
        c.request(1, "GET", a.path)
        c.pump(lambda: c.done(1), a.timeout)
        c.note({"type": "first", "status": c.status.get(1), "serial": c.serial()})
        deadline = time.monotonic() + a.timeout
        while not os.path.exists(a.wait_file):
            if time.monotonic() > deadline:
                raise SystemExit(f"{a.wait_file} did not appear")
            c.pump(lambda: False, 0.05)  # answers PINGs and SETTINGS meanwhile
        c.request(3, "GET", a.path)
        c.pump(lambda: c.done(3), a.timeout)
        c.note({"type": "second", "status": c.status.get(3), "serial": c.serial()})
        finish(c.summary())

    else:
        raise SystemExit(f"unknown scenario {a.scenario}")


if __name__ == "__main__":
    main()
