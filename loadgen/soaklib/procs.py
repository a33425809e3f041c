"""procs.py — the peers the soak runs: a mosquitto broker it can restart on the same
port, vigil-camsim with its control port, vigild; plus free ports, /proc sampling and a
one-request-per-connection HTTP client. Every process started here is stopped here, by
its own pid."""
import ctypes
import http.client
import json
import os
import signal
import socket
import subprocess
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(pred, timeout, step=0.1):
    end = time.monotonic() + timeout
    while True:
        try:
            if pred():
                return True
        except Exception:  # noqa: BLE001 - a probe that throws has not succeeded yet
            pass
        if time.monotonic() >= end:
            return False
        time.sleep(step)


def _die_with_parent():
    """Runs in the child before exec: SIGKILL it if the soak dies (strictly: if the
    thread that started it ends; the soak starts every process from its main thread)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Proc:
    """A child process whose stdout+stderr go to a log file in the work folder."""

    def __init__(self, name, argv, log_path, env=None):
        self.name, self.argv, self.log_path = name, argv, log_path
        self.log = open(log_path, "ab")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=env,
                                  preexec_fn=_die_with_parent)
        self.pid = self.p.pid
        self.started = time.monotonic()

    def alive(self):
        return self.p.poll() is None

    def returncode(self):
        return self.p.poll()

    def stop(self, timeout=10.0, sig=signal.SIGTERM):
        """Signals the process (by pid), waits; SIGKILL after timeout. Returns its exit code."""
        if self.p.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.p.wait(5)
        self.log.close()
        return self.p.returncode


def proc_stats(pid):
    """(rss_kb, threads, fds) of a live process, or None."""
    try:
        rss = threads = None
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return rss, threads, fds
    except (OSError, ValueError):
        return None


def proc_cpu_s(pid):
    """User + system CPU seconds of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class Broker:
    """mosquitto on a fixed loopback port, restartable with the same configuration."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.port = free_port()
        self.conf = os.path.join(workdir, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                    "persistence false\nmax_queued_messages 100000\n")
        self.proc = None
        self.starts = 0

    def start(self, timeout=10.0):
        self.starts += 1
        self.proc = Proc("mosquitto", ["mosquitto", "-c", self.conf],
                         os.path.join(self.workdir, "mosquitto.log"))

        def listening():
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        if not wait_until(listening, timeout, 0.02):
            raise RuntimeError(f"mosquitto did not start on port {self.port}")

    def stop(self):
        if self.proc:
            self.proc.stop(5)
            self.proc = None

    def up(self):
        return self.proc is not None and self.proc.alive()


class Camsim:
    def __init__(self, build, workdir, count, clip):
        self.rtsp_port, self.ctrl_port = free_port(), free_port()
        self.count = count
        log = os.path.join(workdir, "camsim.log")
        self.proc = Proc("camsim", [os.path.join(build, "vigil-camsim"), "--port",
                                    str(self.rtsp_port), "--control", str(self.ctrl_port),
                                    "--count", str(count), "--clip", clip], log)

        def ready():
            with open(log) as f:
                return "camsim ready" in f.read()
        if not wait_until(ready, 20):
            raise RuntimeError("vigil-camsim did not start (see camsim.log)")

    def url(self, cam):
        return f"rtsp://127.0.0.1:{self.rtsp_port}/cam{cam}"

    def control(self, line):
        """One control command; returns the answer line."""
        with socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=5) as s:
            s.sendall((line + "\n").encode())
            f = s.makefile("r")
            return f.readline().strip()

    def stop(self):
        return self.proc.stop(5)


class Http:
    """One request per connection (no keep-alive, so the daemon's fd count is ours to read)."""

    def __init__(self, port, token):
        self.port, self.token = port, token

    def request(self, method, path, body=None, token="default", timeout=10.0,
                content_type="application/json"):
        """Returns (status, parsed JSON or raw bytes). status 0 = no answer (timeout/refused)."""
        headers = {"Connection": "close"}
        if token == "default":
            token = self.token
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode()
            headers["Content-Type"] = content_type
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException):
            return 0, None
        finally:
            conn.close()
        try:
            return status, json.loads(data)
        except ValueError:
            return status, data

    def get_json(self, path, timeout=5.0):
        status, body = self.request("GET", path, token=None, timeout=timeout)
        return body if status == 200 and isinstance(body, (dict, list)) else None

    def metrics(self, timeout=5.0):
        status, body = self.request("GET", "/metrics", token=None, timeout=timeout)
        return body.decode() if status == 200 and isinstance(body, bytes) else None


def parse_metrics(text):
    """{name: [(labels dict, value)]} from Prometheus text (just what the soak reads)."""
    out = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        try:
            head, value = line.rsplit(" ", 1)
            v = float(value)
        except ValueError:
            continue
        labels = {}
        if "{" in head:
            name, rest = head.split("{", 1)
            for part in rest.rstrip("}").split('",'):
                if "=" in part:
                    k, val = part.split("=", 1)
                    labels[k.strip()] = val.strip().strip('"')
        else:
            name = head
        out.setdefault(name, []).append((labels, v))
    return out
