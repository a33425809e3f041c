"""consts.py — the soak's tunables that more than one module reads."""
GRACE = {"fault": 10.0, "restart": 5.0, "fps": 2.0, "model": 3.0, "add": 8.0}
GRACE_FAULT = GRACE["fault"]  # camera fault end -> stream judged again (stall 3 + backoff 3 + slack)
MIN_INCLUDED_S = 20.0         # a stream's rate is judged only over at least this much time
RATE_LIMIT = 0.8              # results / (target fps x time), outside the stream's own faults
RSS_LIMIT_PCT = 5.0           # resident memory growth between 25 % and 100 % of the run
FLOW_GAP_LIMIT_S = 10.0       # longest silence on the inference topics while connected
RECONNECT_LIMIT_S = 5.0       # broker back -> first daemon message; unreachable-broker probe cap 3 s (mqtt.c)
SAMPLE_S = 2.0                # /proc and /metrics sampling period
KILL_QUIET_S = 1.5            # no ordinary MQTT commands this close to a broker kill
