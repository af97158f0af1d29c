#!/usr/bin/env python3
"""WebSocket echo round trips, for bench/websocket.sh (127.0.0.1 only, standard library only).

  ws_echo.py PORT PATH ORIGIN COUNT SIZE [PID]

Opens one WebSocket to 127.0.0.1:PORT/PATH (demo-upstream's /ws/echo, directly or through
cors-proxy), sends COUNT binary messages of SIZE bytes one at a time, each after the previous
echo came back, and prints one JSON line: count, size, p50_us, p99_us, mean_us, and with PID
(the proxy) cpu_us_per_message: the CPU time of all PID's threads (schedstat, nanoseconds)
over the timed loop, divided by COUNT (per round trip: the message and its echo). A warm-up of COUNT/10 round trips comes first.
"""
import json
import os
import socket
import struct
import sys
import time

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
MASK = b"\x37\xfa\x21\x3d"


def cpu_ns(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass  # a thread that ended between listdir and open
    return total


def recv_exactly(sock, view, n):
    got = 0
    while got < n:
        k = sock.recv_into(view[got:n], n - got)
        if k == 0:
            raise SystemExit("connection closed")
        got += k


def main():
    port, path, origin, count, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    pid = int(sys.argv[6]) if len(sys.argv) > 6 else None
    sock = socket.create_connection(("127.0.0.1", int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(
        (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         f"Sec-WebSocket-Key: {KEY.decode()}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit("closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101 "):
        raise SystemExit("handshake refused: " + head.split(b"\r\n")[0].decode())

    payload = bytes(i % 251 for i in range(size))
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    if size < 126:
        frame = struct.pack("!BB", 0x82, 0x80 | size)
        echo_header = 2
    elif size <= 0xFFFF:
        frame = struct.pack("!BBH", 0x82, 0x80 | 126, size)
        echo_header = 4
    else:
        frame = struct.pack("!BBQ", 0x82, 0x80 | 127, size)
        echo_header = 10
    frame += MASK + masked
    if head.split(b"\r\n\r\n", 1)[1]:  # the echo endpoint sends nothing first
        raise SystemExit("unexpected bytes after the 101")
    reply = bytearray(echo_header + size)
    view = memoryview(reply)

    def round_trip():
        sock.sendall(frame)
        recv_exactly(sock, view, len(reply))

    for _ in range(max(count // 10, 100)):
        round_trip()
    if bytes(reply[echo_header:]) != payload:
        raise SystemExit("the echo is not the message")
    samples = []
    cpu_before = cpu_ns(pid) if pid else 0
    for _ in range(count):
        t0 = time.perf_counter_ns()
        round_trip()
        samples.append(time.perf_counter_ns() - t0)
    cpu_after = cpu_ns(pid) if pid else 0
    sock.sendall(struct.pack("!BB", 0x88, 0x82) + MASK + bytes(b ^ MASK[i] for i, b in enumerate(b"\x03\xe8")))
    sock.close()
    samples.sort()
    result = {
        "count": count,
        "size": size,
        "p50_us": samples[len(samples) // 2] / 1000,
        "p99_us": samples[int(len(samples) * 0.99)] / 1000,
        "mean_us": sum(samples) / len(samples) / 1000,
    }
    if pid:
        result["cpu_us_per_message"] = (cpu_after - cpu_before) / count / 1000
    print(json.dumps(result))


if __name__ == "__main__":
    main()
