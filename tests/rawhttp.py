"""rawhttp.py — raw-socket HTTP client and server launcher for primed's hostile-input, slowloris
and fault tests (tests/test_hostile.sh, tests/test_slowloris.sh, tests/test_faults.sh).

Speaks bytes, not a library's idea of HTTP, so tests can send what no well-behaved client would:
broken request lines, NUL bytes, lying Content-Lengths, endless chunked bodies. Every socket
operation has a timeout; servers listen on 127.0.0.1 only and are started with ephemeral ports
(--port-file). Nothing here knows the expected answers; the test scripts do.
"""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

BIN = os.environ.get("PRIMED_BIN", os.path.join(os.path.dirname(__file__), "..", "build", "primed"))
VARIANT = os.environ.get("PRIMED_VARIANT") or (
    "asan" if "/asan/" in BIN else "tsan" if "/tsan/" in BIN else "release")
# Sanitizer builds run several times slower: scale waits, never the limits under test.
SLOW = 3.0 if VARIANT in ("asan", "tsan") else 1.0
# The start timeout of the launch contract (docs/testing.md, shared with scripts/lib.sh and
# tests/harness.c): PRIMED_TEST_START_TIMEOUT seconds, else 10 s × 3 (asan) or × 5 (tsan).
START_TIMEOUT = float(os.environ.get("PRIMED_TEST_START_TIMEOUT") or
                      10 * {"asan": 3, "tsan": 5}.get(VARIANT, 1))


def readyz_ok(port):
    """GET /readyz answers 200 (Connection: close: the probe holds no connection slot)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while b"\r\n" not in data and len(data) < 4096:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.startswith(b"HTTP/1.1 200 ") or data.startswith(b"HTTP/1.0 200 ")
    except OSError:
        return False


class Server:
    """build/primed on 127.0.0.1:0 (debug listener on 127.0.0.1:0 unless args say otherwise),
    started per docs/testing.md: ready when the port file names both ports and /readyz is 200;
    raises RuntimeError with the log tail when it exits while starting or is not ready in time."""

    def __init__(self, args=(), preexec=None, env=None, debug=True):
        self.dir = tempfile.mkdtemp(prefix="primed-raw-")
        self.port_file = os.path.join(self.dir, "ports")
        self.log_path = os.path.join(self.dir, "stderr.log")
        argv = [BIN] + list(args)
        if not any(a.startswith("--listen") for a in args):
            argv += ["--listen", "127.0.0.1:0"]
        if debug and not any(a.startswith("--debug-listen") for a in args):
            argv += ["--debug-listen", "127.0.0.1:0"]
        argv += ["--port-file", self.port_file]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, preexec_fn=preexec, env=env)
        deadline = time.time() + START_TIMEOUT
        self.port = self.debug_port = None
        ports = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("primed exited with %s while starting:\n%s"
                                   % (self.proc.returncode, self.log_text()))
            if ports is None:
                try:
                    with open(self.port_file) as f:  # written by rename: complete when present
                        parts = f.read().split()
                    if len(parts) == 2:
                        ports = int(parts[0]), int(parts[1])
                except (FileNotFoundError, ValueError):
                    pass
            if ports is not None and readyz_ok(ports[0]):
                self.port, self.debug_port = ports
                break
            time.sleep(0.02)
        if self.port is None:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("primed was not ready (port file %s, /readyz 200) within %.0f s:\n%s"
                               % (ports, START_TIMEOUT, self.log_text()))

    def log_text(self, limit=4000):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            data = f.read()
        return data[-limit:].decode("utf-8", "replace")

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Signal (sig=None: only wait) and wait; returns the exit code (negative = killed by
        that signal), or None when it had to be SIGKILLed after timeout. A second SIGTERM
        during a drain forces primed out early, so never signal twice."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.log.close()
        return rc


class Response:
    def __init__(self, status, reason, headers, body, version):
        self.status, self.reason, self.headers, self.body, self.version = (
            status, reason, headers, body, version)

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None

    def __repr__(self):
        return "Response(%d %s, %r)" % (self.status, self.reason, self.body[:120])


class Closed(Exception):
    """The server closed (or reset) the connection before a complete response."""

    def __init__(self, how, partial=b""):
        super().__init__(how)
        self.how, self.partial = how, partial


def connect(port, src=None, timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout * SLOW)
    if src is not None:
        s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


class Reader:
    """Buffered response reader over one socket (several responses for pipelining)."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def _more(self):
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            raise Closed("reset", self.buf)
        except socket.timeout:
            raise Closed("timeout", self.buf)
        if not data:
            raise Closed("closed", self.buf)
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise Closed("garbage", self.buf[:200])
            self._more()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._more()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self, head=False):
        status_line = self._line()
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise Closed("not-http", status_line)
        version, status = parts[0].decode(), int(parts[1])
        reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
        headers = {}
        while True:
            line = self._line()
            if not line:
                break
            k, _, v = line.partition(b":")
            key = k.decode("latin-1").strip().lower()
            val = v.decode("latin-1").strip()
            headers[key] = headers[key] + ", " + val if key in headers else val
        body = b""
        if head or status in (204, 304) or 100 <= status < 200:
            pass
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body += self._exact(size)
                self._exact(2)
        elif "content-length" in headers:
            body = self._exact(int(headers["content-length"]))
        else:  # body until close
            try:
                while True:
                    self._more()
            except Closed:
                pass
            body, self.buf = self.buf, b""
        return Response(status, reason, headers, body, version)


def exchange(port, data, timeout=5.0, src=None, shut_wr=False, head=False):
    """Send raw bytes, read one response. Returns a Response or raises Closed."""
    s = connect(port, src=src, timeout=timeout)
    try:
        s.sendall(data)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        return Reader(s).response(head=head)
    except (BrokenPipeError, ConnectionResetError):
        raise Closed("reset")
    finally:
        s.close()


def get(port, path, timeout=5.0, src=None, headers=()):
    req = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" % path
    for h in headers:
        req += h + "\r\n"
    return exchange(port, (req + "\r\n").encode("latin-1"), timeout=timeout, src=src)


def healthz_ok(port, timeout=5.0, src=None):
    try:
        r = get(port, "/healthz", timeout=timeout, src=src)
        return r.status == 200
    except (Closed, OSError):
        return False


def error_shape(r):
    """None when r is a well-formed primed error response, else what is wrong with it."""
    ct = (r.header("content-type") or "").lower()
    if not ct.startswith("application/json"):
        return "content-type %r" % ct
    if (r.header("x-content-type-options") or "").lower() != "nosniff":
        return "no X-Content-Type-Options: nosniff"
    j = r.json()
    if not isinstance(j, dict) or not isinstance(j.get("error"), dict):
        return "body is not {\"error\":{...}}: %r" % r.body[:120]
    e = j["error"]
    for k in ("code", "message"):
        if not isinstance(e.get(k), str) or not e[k]:
            return "error.%s missing" % k
    if "param" in e and e["param"] is not None and not isinstance(e["param"], str):
        return "error.param is not a string"
    return None


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


class Report:
    """One line per check ('name  ok|FAIL  detail'), counting failures; finish() prints the
    total and exits 1 when any check failed."""

    def __init__(self, script, width=44):
        self.script, self.width, self.failures = script, width, 0

    def __call__(self, name, ok, detail=""):
        print("%-*s %-5s %s" % (self.width, name, "ok" if ok else "FAIL", detail))
        self.failures += not ok

    def finish(self):
        print("%s: %d failure(s)" % (self.script, self.failures))
        raise SystemExit(1 if self.failures else 0)


def metrics(port):
    """Every sample on GET /metrics of port: {'name{labels}': value}."""
    r = exchange(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = {}
    for line in r.body.decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def metric(port, name):
    """The value of the sample `name` (with its labels, if any) on GET /metrics of port, or None."""
    return metrics(port).get(name)
