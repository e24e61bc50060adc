#!/usr/bin/env python3
"""bench-debug-requests.py MAIN_PORT DEBUG_PORT N — hold N count requests in flight on primed's
main listener (raw sockets on 127.0.0.1, each a count that queues behind the workers), then time
/debug/requests (limit 100 and 10000) against /healthz on the debug listener, 9 curls each.
Start primed with --queue-capacity, --max-connections and --max-connections-per-ip above N and a
long --request-timeout-ms. Bounded: N sockets, 36 curls, every socket with a 30 s timeout."""
import socket, sys, time, subprocess
mp, dp, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", mp), timeout=30)
    s.sendall(b"GET /v1/count?from=%d&to=10000000000000 HTTP/1.1\r\nHost: x\r\n\r\n" % i)
    socks.append(s)
time.sleep(2)
def t(path):
    ts = []
    for _ in range(9):
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", "http://127.0.0.1:%d%s" % (dp, path)], capture_output=True).stdout
        ts.append(float(r) * 1000)
    ts.sort()
    return "min %.1f ms, median %.1f ms" % (ts[0], ts[4])
for p in ("/healthz", "/debug/requests?limit=100", "/debug/requests?limit=10000", "/healthz"):
    print(n, "in flight:", p, t(p))
