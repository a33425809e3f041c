"""selftest.py — checks the soak's own judging (model.py) and MQTT framing (mqttc.py)
without any peer: which answers a command may legitimately get given what overlapped
it. Run: python3 -m soaklib.selftest (from loadgen/), or ctest -R soak_selftest."""
import unittest

from .model import OK, Cmd, Stream, World
from .mqttc import MqttClient, _varint


def world():
    w = World({"fault": 10, "restart": 5, "fps": 2, "model": 3, "add": 8})
    w.add_stream(Stream("s0", 0, True, 1, "m0", ["person_detector"], True))
    w.add_stream(Stream("x0", 1, False, 1, "m0", ["person_detector"], False))
    return w


def cmd(w, kind, channel, stream, t, **kw):
    c = Cmd(kind, channel, stream, cid=f"c{Cmd._n + 1}")
    c.t_sent = t
    for k, v in kw.items():
        setattr(c, k, v)
    w.register(c)
    return c


class Judging(unittest.TestCase):
    def test_plain_change_completes(self):
        w = world()
        c = cmd(w, "set_fps", "mqtt-stream", "s0", 1.0, effect={"fps": 2}, mutating=True)
        w.resolve(c, "completed", None, 1.1)
        self.assertEqual(c.verdict, "ok")
        self.assertEqual(w.streams["s0"].fps, 2)
        self.assertEqual(w.streams["s0"].fps_at(1.2), 2)
        self.assertEqual(w.streams["s0"].fps_at(1.0), 1)

    def test_busy_only_while_a_load_overlaps(self):
        w = world()
        load = cmd(w, "change_model", "mqtt-stream", "s0", 1.0, load=True,
                   effect={"model_id": "m1"}, mutating=True)
        probe = cmd(w, "set_confidence", "mqtt-stream", "s0", 1.01, effect={"conf": 0.7})
        w.resolve(probe, "rejected", "busy", 1.02)
        self.assertEqual(probe.verdict, "ok")
        w.resolve(load, "completed", None, 1.2)
        after = cmd(w, "set_fps", "mqtt-stream", "s0", 1.3, effect={"fps": 2})
        w.resolve(after, "rejected", "busy", 1.4)
        self.assertNotEqual(after.verdict, "ok")  # the load had finished: no excuse
        self.assertEqual(w.streams["s0"].model_id, "m1")

    def test_a_rejected_load_never_made_anything_busy(self):
        w = world()
        load = cmd(w, "change_model", "rest-commands", "s0", 1.0, load=True, ok=("rejected", "unknown_model"))
        other = cmd(w, "restart", "mqtt-stream", "s0", 1.05, effect={"restart": True})
        w.resolve(load, "rejected", "unknown_model", 1.06, http_status=400)
        self.assertEqual(load.verdict, "ok")
        w.resolve(other, "rejected", "busy", 1.1)
        self.assertNotEqual(other.verdict, "ok")

    def test_existence_is_ambiguous_only_while_add_or_remove_is_in_flight(self):
        w = world()
        add = cmd(w, "add_stream", "mqtt-instance", "x0", 1.0, exist_op=True, mutating=True,
                  effect={"add": {"fps": 1, "model_id": "m0", "workers": ["person_detector"]}})
        during = cmd(w, "set_fps", "rest-commands", "x0", 1.01, effect={"fps": 2})
        w.resolve(during, "rejected", "unknown_stream", 1.02, http_status=404)
        self.assertEqual(during.verdict, "ok")
        w.resolve(add, "completed", None, 1.05)
        self.assertTrue(w.streams["x0"].exists)
        late = cmd(w, "set_fps", "rest-commands", "x0", 2.0, effect={"fps": 2})
        w.resolve(late, "rejected", "unknown_stream", 2.1, http_status=404)
        self.assertNotEqual(late.verdict, "ok")

    def test_rest_codes_follow_the_ack(self):
        w = world()
        c = cmd(w, "add_stream", "rest-add", "s0", 1.0, http_ok=201, exist_op=True,
                effect={"add": {"fps": 1, "model_id": "m0", "workers": []}})
        w.resolve(c, "rejected", "stream_exists", 1.1, http_status=409)
        self.assertEqual(c.verdict, "ok")
        c2 = cmd(w, "x", "rest-patch", "s0", 1.2, expect={("http", 401)})
        w.resolve(c2, "http-error", "unauthorized", 1.3, http_status=401)
        self.assertEqual(c2.verdict, "ok")
        c3 = cmd(w, "set_fps", "rest-commands", "s0", 1.4, effect={"fps": 2})
        w.resolve(c3, None, None, 11.4, http_status=0)
        self.assertIn("no answer", c3.verdict)

    def test_mqtt_acks_are_attributed_in_order(self):
        w = world()
        c = cmd(w, "set_fps", "mqtt-stream", "s0", 1.0, effect={"fps": 2})
        w.on_mqtt_ack({"command_id": c.cid, "status": "received", "error": None}, 1.01)
        w.on_mqtt_ack({"command_id": c.cid, "status": "completed", "error": None}, 1.02)
        self.assertEqual((c.received, c.verdict), (1, "ok"))
        rep = Cmd("set_fps", "mqtt-stream", "s0", cid=c.cid)
        rep.repeat_of = c
        w.register(rep)
        w.on_mqtt_ack({"command_id": c.cid, "status": "completed", "error": None}, 2.0)
        self.assertEqual(rep.verdict, "ok")
        self.assertEqual(w.streams["s0"].fps, 2)
        w.on_mqtt_ack({"command_id": c.cid, "status": "completed", "error": None}, 3.0)
        self.assertEqual(len(w.duplicate_acks), 1)
        w.on_mqtt_ack({"command_id": None, "status": "rejected",
                       "error": {"code": "invalid_json"}}, 3.1)
        self.assertEqual(w.null_acks, {"invalid_json": 1})
        self.assertEqual(OK, ("completed", None))


class Framing(unittest.TestCase):
    def test_remaining_length(self):
        self.assertEqual(_varint(0), b"\x00")
        self.assertEqual(_varint(127), b"\x7f")
        self.assertEqual(_varint(128), b"\x80\x01")
        self.assertEqual(_varint(70 * 1024), b"\x80\xb0\x04")

    def test_packets_split_anywhere(self):
        pkt = bytes([0x30]) + _varint(7) + b"\x00\x01tabcd"
        buf = bytearray(pkt[:3])
        self.assertEqual(list(MqttClient._packets(buf)), [])
        buf += pkt[3:] + pkt
        got = list(MqttClient._packets(buf))
        self.assertEqual(len(got), 2)
        self.assertEqual(got[0][0], 3)
        self.assertEqual(buf, bytearray())


if __name__ == "__main__":
    unittest.main()
