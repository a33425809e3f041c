"""mqttc.py — a small MQTT 3.1.1 client for the soak test (standard library only).

One thread per client owns the socket: it connects (and reconnects every 50 ms while
the broker is away), subscribes, answers PUBACK for QoS 1 deliveries, pings, and hands
every message to on_message(topic, payload, t) on that thread. publish() may be called
from any thread; it returns the packet id, or None while disconnected. A client counts
as connected only once its subscriptions are acknowledged, so "connected" means
"will see what is published from now on".
"""
import socket
import struct
import threading
import time

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = (
    1, 2, 3, 4, 8, 9, 12, 13, 14)


class ProtocolError(Exception):
    pass


def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def _packet(kind, flags, body):
    return bytes([(kind << 4) | flags]) + _varint(len(body)) + body


class MqttClient:
    def __init__(self, host, port, client_id, subscriptions=(), on_message=None,
                 keepalive=20, on_connect=None):
        self.host, self.port, self.client_id = host, port, client_id
        self.subscriptions = list(subscriptions)
        self.on_message = on_message
        self.on_connect = on_connect
        self.keepalive = keepalive
        self._sock = None
        self._send_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._next_mid = 0
        self._acked = {}          # mid -> monotonic time of PUBACK
        self._thread = None
        self.connects = 0
        self.handler_errors = []
        self.connected_at = None  # monotonic time of the last successful (subscribed) connect

    # ---- public ------------------------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._run, name=f"mqtt:{self.client_id}",
                                        daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        sock = self._sock
        if sock:
            try:
                with self._send_lock:
                    sock.sendall(_packet(DISCONNECT, 0, b""))
            except OSError:
                pass
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread:
            self._thread.join(timeout=3)

    def is_connected(self):
        return self._connected.is_set()

    def wait_connected(self, timeout):
        return self._connected.wait(timeout)

    def publish(self, topic, payload, qos=1):
        """Sends one PUBLISH; returns its packet id (0 for QoS 0) or None if offline."""
        if isinstance(payload, str):
            payload = payload.encode()
        with self._state_lock:
            self._next_mid = self._next_mid % 65535 + 1
            mid = self._next_mid if qos else 0
        body = _str(topic) + (struct.pack("!H", mid) if qos else b"") + payload
        pkt = _packet(PUBLISH, qos << 1, body)
        sock = self._sock
        if not sock or not self._connected.is_set():
            return None
        try:
            with self._send_lock:
                sock.sendall(pkt)
        except OSError:
            return None
        return mid

    def puback_time(self, mid):
        with self._state_lock:
            return self._acked.get(mid)

    # ---- connection thread -------------------------------------------------------------------
    def _run(self):
        while not self._stop.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
            except OSError:
                time.sleep(0.05)
                continue
            try:
                self._session(sock)
            except (OSError, ProtocolError):
                pass
            finally:
                self._connected.clear()
                self._sock = None
                try:
                    sock.close()
                except OSError:
                    pass
            if not self._stop.is_set():
                time.sleep(0.05)

    def _session(self, sock):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(1.0)
        self._sock = sock
        body = _str("MQTT") + bytes([4, 0x02]) + struct.pack("!H", self.keepalive) + \
            _str(self.client_id)
        with self._send_lock:
            sock.sendall(_packet(CONNECT, 0, body))
        buf = bytearray()
        last_tx = time.monotonic()
        deadline = time.monotonic() + 3.0
        sub_mid = None
        while not self._stop.is_set():
            for kind, flags, payload in self._packets(buf):
                if kind == CONNACK:
                    if len(payload) < 2 or payload[1] != 0:
                        raise ProtocolError(f"connack {bytes(payload)!r}")
                    if self.subscriptions:
                        sub_mid = 65535
                        body = struct.pack("!H", sub_mid) + b"".join(
                            _str(t) + bytes([q]) for t, q in self.subscriptions)
                        with self._send_lock:
                            sock.sendall(_packet(SUBSCRIBE, 0x02, body))
                    else:
                        self._up()
                elif kind == SUBACK:
                    if sub_mid is not None and struct.unpack("!H", payload[:2])[0] == sub_mid:
                        sub_mid = None
                        self._up()
                elif kind == PUBLISH:
                    self._deliver(sock, flags, payload)
                elif kind == PUBACK:
                    mid = struct.unpack("!H", payload[:2])[0]
                    with self._state_lock:
                        self._acked[mid] = time.monotonic()
                        if len(self._acked) > 20000:
                            for k in list(self._acked)[:10000]:
                                del self._acked[k]
            if not self._connected.is_set() and time.monotonic() > deadline:
                raise ProtocolError("no CONNACK/SUBACK")
            now = time.monotonic()
            if now - last_tx > self.keepalive / 2:
                with self._send_lock:
                    sock.sendall(_packet(PINGREQ, 0, b""))
                last_tx = now
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise ProtocolError("closed")
            buf += data

    def _up(self):
        self.connects += 1
        self.connected_at = time.monotonic()
        self._connected.set()
        if self.on_connect:
            self.on_connect(self.connected_at)

    @staticmethod
    def _packets(buf):
        """Yields complete packets from the front of buf and removes them."""
        while len(buf) >= 2:
            mult, length, i = 1, 0, 1
            while True:
                if i >= len(buf):
                    return
                b = buf[i]
                length += (b & 0x7F) * mult
                mult *= 128
                i += 1
                if not b & 0x80:
                    break
                if i > 4:
                    raise ProtocolError("bad remaining length")
            if len(buf) < i + length:
                return
            kind, flags = buf[0] >> 4, buf[0] & 0x0F
            payload = bytes(buf[i:i + length])
            del buf[:i + length]
            yield kind, flags, payload

    def _deliver(self, sock, flags, payload):
        qos = (flags >> 1) & 3
        tlen = struct.unpack("!H", payload[:2])[0]
        topic = payload[2:2 + tlen].decode("utf-8", "replace")
        pos = 2 + tlen
        if qos:
            mid = struct.unpack("!H", payload[pos:pos + 2])[0]
            pos += 2
        body = payload[pos:]
        if self.on_message:
            try:
                self.on_message(topic, body, time.monotonic())
            except Exception as e:  # noqa: BLE001 - a handler bug must not end the session
                self.handler_errors.append(f"{topic}: {e!r}")
        if qos == 1:
            with self._send_lock:
                sock.sendall(_packet(PUBACK, 0, struct.pack("!H", mid)))
        elif qos == 2:
            raise ProtocolError("QoS 2 is not supported")
