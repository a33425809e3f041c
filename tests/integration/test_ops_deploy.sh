#!/usr/bin/env bash
# deploy/docker and deploy/kubernetes, checked without an engine or a cluster: every file
# parses, the pieces point at each other (mounts, service names, ports, labels, shard
# count = replicas), every vigil configuration they carry passes `vigild --check-config`
# (the Kubernetes one once per pod ordinal), and the Dockerfile's recipe for the runtime
# packages works on this build. `docker compose config` runs with VIGIL_DOCKER_COMPOSE=1.
. "$(dirname "$0")/lib.sh"
require promtool command -v promtool
require "python3 yaml (Debian python3-yaml)" $PY -c "import yaml"

D=$SRC/deploy
check_cfg() { # FILE [ENV=VALUE...]
    local f=$1; shift
    env "$@" "$BUILD/vigild" --check-config -c "$f" >"$T/check.log" 2>&1 ||
        { cat "$T/check.log" >&2; fail "--check-config $f $*"; }
}

# ---- Docker Compose ----------------------------------------------------------------------
$PY - "$D/docker/compose.yaml" "$SRC" <<'PY' || fail "compose.yaml"
import os, re, sys, yaml
path, src = sys.argv[1], sys.argv[2]
here = os.path.dirname(path)
doc = yaml.safe_load(open(path))
svc = doc["services"]
def check(cond, what):
    if not cond:
        sys.exit("compose: " + what)
check(set(svc) == {"vigild", "mosquitto", "prometheus", "grafana"}, "services %s" % sorted(svc))
b = svc["vigild"]["build"]
ctx = os.path.normpath(os.path.join(here, b["context"]))
check(ctx == os.path.normpath(src), "build context %s is not the repository root" % ctx)
check(os.path.isfile(os.path.join(ctx, b["dockerfile"])), "no Dockerfile at " + b["dockerfile"])
mounts = {}  # (service, container path) -> host path
for name, s in svc.items():
    for v in s.get("volumes", []):
        v = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", v)  # ${VAR:-default}
        host, target = v.split(":")[:2]
        if host.startswith("."):
            host = os.path.normpath(os.path.join(here, host))
            # models live outside the repo; broker secrets are made by make-passwd.sh
            if "shared/models" not in host and "mosquitto/secrets/" not in host:
                check(os.path.exists(host), "%s mounts missing %s" % (name, host))
        else:
            check(host in (doc.get("volumes") or {}), "%s: undeclared volume %s" % (name, host))
        mounts[(name, target)] = host
def host_path(name, container_path):
    for (n, target), host in mounts.items():
        if n == name and (container_path == target or container_path.startswith(target + "/")):
            return host + container_path[len(target):]
    sys.exit("compose: %s has nothing mounted at %s" % (name, container_path))
# vigild: its configuration, the broker it talks to, the port Prometheus scrapes
cfg = yaml.safe_load(open(host_path("vigild", "/etc/vigil/vigil.yaml")))
check(cfg["mqtt"]["host"] in svc, "vigil.yaml mqtt.host %s is not a service" % cfg["mqtt"]["host"])
listen_port = cfg["http"]["listen"].rsplit(":", 1)[1]
check(cfg["http"]["listen"].startswith("0.0.0.0:"), "vigild must listen on all interfaces in a container")
check(any(p.endswith(":" + listen_port) for p in svc["vigild"]["ports"]), "vigild port not published")
print(host_path("vigild", "/etc/vigil/vigil.yaml"))
# mosquitto: deploy/mosquitto's configuration, its ACL and password file mounted where it
# reads them; vigild logs in as a user the ACL knows, with the password as a secret
mlines = open(host_path("mosquitto", "/mosquitto/config/mosquitto.conf")).read().splitlines()
check("allow_anonymous false" in mlines, "the broker admits anonymous clients")
for key in ("acl_file", "password_file"):
    path = [l.split(None, 1)[1] for l in mlines if l.startswith(key + " ")]
    check(len(path) == 1, "mosquitto.conf has no " + key)
    host_path("mosquitto", path[0])
acl = open(host_path("mosquitto", "/mosquitto/config/acl")).read().splitlines()
check("user " + cfg["mqtt"].get("username", "") in acl, "vigil.yaml's mqtt.username is not in the ACL")
check("vigil_mqtt_password" in (svc["vigild"].get("secrets") or []), "vigild gets no MQTT password")
# prometheus: its config (mounted), which scrapes vigild and loads the rules
conf = [a.split("=", 1)[1] for a in svc["prometheus"]["command"] if a.startswith("--config.file=")][0]
pconf = host_path("prometheus", conf)
p = yaml.safe_load(open(pconf))
targets = [t for j in p["scrape_configs"] if j["job_name"] == "vigil" for sc in j["static_configs"] for t in sc["targets"]]
check(targets == ["vigild:" + listen_port], "prometheus targets %s" % targets)
for r in p["rule_files"]:
    check(os.path.isfile(os.path.join(os.path.dirname(pconf), r)), "rule file %s" % r)
print(pconf)
# grafana: provisioning -> datasource url, dashboards path -> the dashboard JSON
prov = host_path("grafana", "/etc/grafana/provisioning")
ds = yaml.safe_load(open(os.path.join(prov, "datasources", "prometheus.yaml")))["datasources"][0]
check(ds["url"] == "http://prometheus:9090", "datasource url %s" % ds["url"])
dp = yaml.safe_load(open(os.path.join(prov, "dashboards", "vigil.yaml")))["providers"][0]
check(os.path.isfile(os.path.join(host_path("grafana", dp["options"]["path"]), "vigil.json")),
      "dashboard provider path %s has no vigil.json" % dp["options"]["path"])
home = svc["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
check(os.path.isfile(host_path("grafana", home)), "home dashboard " + home)
PY
# the compose secret exists only in a container: check with a stand-in file
printf 'stand-in\n' >"$T/vigil_mqtt_password"
grep -q 'password_file: /run/secrets/vigil_mqtt_password' "$D/docker/vigil.yaml" ||
    fail "docker vigil.yaml does not read the compose secret"
sed "s|/run/secrets/vigil_mqtt_password|$T/vigil_mqtt_password|" "$D/docker/vigil.yaml" >"$T/docker-vigil.yaml"
check_cfg "$T/docker-vigil.yaml"
promtool check config "$D/prometheus/prometheus-compose.yml" >/dev/null 2>&1 || fail "prometheus-compose.yml"
# Compose v2's own validation: Debian 12 packages no `docker compose` (its docker-compose
# 1.29 rejects the Compose spec's top-level `name`), so it is opt-in, not machine-dependent:
# VIGIL_DOCKER_COMPOSE=1 runs it and then requires it. The checks above cover the file.
if [ "${VIGIL_DOCKER_COMPOSE:-0}" = 1 ]; then
    require "docker compose (Compose v2)" docker compose version
    docker compose -f "$D/docker/compose.yaml" config -q || fail "docker compose config"
fi

# ---- Dockerfile ------------------------------------------------------------------------------
DF=$D/docker/Dockerfile
[ "$(grep -c '^FROM debian:12' "$DF")" -ge 2 ] || fail "Dockerfile: want a multi-stage Debian 12 build"
user=$(awk '$1 == "USER" { u = $2 } END { print u }' "$DF")
case "$user" in 0 | 0:* | root | root:* | "") fail "Dockerfile runs as '$user'" ;; esac
grep -q '^ENTRYPOINT \["/usr/local/bin/vigild"\]' "$DF" || fail "Dockerfile ENTRYPOINT"
# every COPY from the build context exists (paths relative to the repository root)
awk '$1 == "COPY" && $2 !~ /^--from/ { for (i = 2; i < NF; i++) print $i }' "$DF" | while read -r p; do
    [ -e "$SRC/$p" ] || fail "Dockerfile copies missing $p"
done
# the runtime stage installs the packages that hold vigild's NEEDED libraries: run that
# recipe here and check it finds them
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
for lib in $(readelf -d "$BUILD/vigild" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
    dpkg -S "*/$multiarch/$lib" | cut -d: -f1
done | sort -u >"$T/runtime-packages"
for want in libopencv-dnn406 libavcodec59 libmosquitto1 libmicrohttpd12 libsystemd0; do
    grep -qx "$want" "$T/runtime-packages" || fail "runtime packages lack $want: $(tr '\n' ' ' <"$T/runtime-packages")"
done
grep -q 'dpkg -S "\*/$multiarch/$lib"' "$DF" || fail "Dockerfile no longer uses the recipe tested here"
echo "# runtime image packages: $(wc -l <"$T/runtime-packages")"

# ---- Kubernetes ---------------------------------------------------------------------------------
$PY - "$D/kubernetes" "$T/k8s-vigil.yaml" <<'PY' || fail "kubernetes manifests"
import glob, os, sys, yaml
kdir, cfg_out = sys.argv[1], sys.argv[2]
docs = {}
for f in sorted(glob.glob(os.path.join(kdir, "*.yaml"))):
    for d in yaml.safe_load_all(open(f)):
        docs.setdefault(d["kind"], []).append((os.path.basename(f), d))
def check(cond, what):
    if not cond:
        sys.exit("kubernetes: " + what)
for kind in ("StatefulSet", "Service", "ConfigMap", "PodMonitor", "Kustomization"):
    check(len(docs.get(kind, [])) == 1, "want one %s, got %d" % (kind, len(docs.get(kind, []))))
one = lambda k: docs[k][0][1]
kust = one("Kustomization")
check(sorted(kust["resources"]) == sorted(f for k, v in docs.items() if k != "Kustomization" for f, _ in v),
      "kustomization resources %s" % kust["resources"])
sts, svc, cm, pm = one("StatefulSet"), one("Service"), one("ConfigMap"), one("PodMonitor")
labels = sts["spec"]["template"]["metadata"]["labels"]
check(all(labels.get(k) == v for k, v in sts["spec"]["selector"]["matchLabels"].items()), "selector vs pod labels")
check(sts["spec"]["serviceName"] == svc["metadata"]["name"], "serviceName")
check(svc["spec"].get("clusterIP") == "None", "the StatefulSet's Service must be headless")
check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()), "Service selector")
check(all(labels.get(k) == v for k, v in pm["spec"]["selector"]["matchLabels"].items()), "PodMonitor selector")
check(labels.get(pm["spec"]["jobLabel"]) == "vigil", "PodMonitor jobLabel must give job=\"vigil\" (alerts.yml)")
pod = sts["spec"]["template"]["spec"]
c = pod["containers"][0]
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
check([e["port"] for e in pm["spec"]["podMetricsEndpoints"]] == ["http"] and "http" in ports, "metrics port")
check(pm["spec"]["podMetricsEndpoints"][0]["path"] == "/metrics", "metrics path")
env = {e["name"]: e for e in c["env"]}
check(env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name", "POD_NAME")
check("pod-index" in env["VIGIL_SHARD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"], "VIGIL_SHARD_INDEX from the ordinal")
check(c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]["httpGet"]["path"] == "/readyz", "probes")
sc = c["securityContext"]
check(sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, "container securityContext")
check(pod["securityContext"]["runAsNonRoot"] is True, "runAsNonRoot")
mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
vols = {v["name"]: v for v in pod["volumes"]}
check(vols["config"]["configMap"]["name"] == cm["metadata"]["name"], "config volume")
check(c["args"] == ["-c", mounts["config"] + "/vigil.yaml"], "args %s" % c["args"])
text = cm["data"]["vigil.yaml"]
cfg = yaml.safe_load(text)
check(cfg["shard"]["count"] == sts["spec"]["replicas"], "shard.count %s != replicas %s" % (cfg["shard"]["count"], sts["spec"]["replicas"]))
check(cfg["shard"]["index"] == "$VIGIL_SHARD_INDEX" and cfg["instance_id"] == "$POD_NAME", "index / instance_id from env")
check(cfg["http"]["listen"].endswith(":%d" % ports["http"]), "http.listen vs containerPort")
check("state_file" not in cfg, "a state_file would pin streams across a rescale")
open(cfg_out, "w").write(text)
print("replicas=%d streams=%d" % (sts["spec"]["replicas"], len(cfg["streams"])))
PY
replicas=$(awk '$1 == "replicas:" { print $2 }' "$D/kubernetes/statefulset.yaml")
for i in $(seq 0 $((replicas - 1))); do
    check_cfg "$T/k8s-vigil.yaml" POD_NAME="vigil-$i" VIGIL_SHARD_INDEX="$i"
done
env -u VIGIL_SHARD_INDEX POD_NAME=vigil-0 "$BUILD/vigild" --check-config -c "$T/k8s-vigil.yaml" 2>"$T/check.log" &&
    fail "accepted a pod without VIGIL_SHARD_INDEX"
grep -q 'VIGIL_SHARD_INDEX is not set' "$T/check.log" || fail "unclear error: $(cat "$T/check.log")"
pass "compose, Dockerfile and Kubernetes manifests are consistent; $replicas pod configs check"
