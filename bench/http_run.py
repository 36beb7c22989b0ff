#!/usr/bin/env python3
"""`run --rm IMAGE true` through the Engine API over a unix socket, as plain HTTP: create, start,
wait, delete on one keep-alive connection. Prints the median and p90 of each phase and of the
whole, in milliseconds.

usage: bench/http_run.py SOCKET [N] [IMAGE]
"""
import http.client
import json
import socket
import statistics
import sys
import time


class UnixConn(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.path)
        self.sock = s


def call(c, method, url, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    c.request(method, url, body=json.dumps(body) if body is not None else None, headers=headers)
    r = c.getresponse()
    data = r.read()
    if r.status >= 400:
        raise SystemExit(f"{method} {url}: {r.status} {data!r}")
    return data


def main():
    sock = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    image = sys.argv[3] if len(sys.argv) > 3 else "busybox"
    c = UnixConn(sock)
    phases = {"create": [], "start": [], "wait": [], "delete": [], "total": []}
    body = {"Image": image, "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}
    for i in range(n + 3):
        t0 = time.perf_counter()
        cid = json.loads(call(c, "POST", "/v1.41/containers/create", body))["Id"]
        t1 = time.perf_counter()
        call(c, "POST", f"/v1.41/containers/{cid}/start")
        t2 = time.perf_counter()
        call(c, "POST", f"/v1.41/containers/{cid}/wait")
        t3 = time.perf_counter()
        call(c, "DELETE", f"/v1.41/containers/{cid}")
        t4 = time.perf_counter()
        if i < 3:  # warm-up
            continue
        for k, v in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
            phases[k].append(v * 1000)
    for k, v in phases.items():
        v.sort()
        print(f"{k:7s} median {statistics.median(v):7.2f} ms   p90 {v[int(len(v) * 0.9) - 1]:7.2f} ms")


if __name__ == "__main__":
    main()
