#!/usr/bin/env bash
# test_deploy_configs.sh — the deployment configs are valid and agree with each other and with
# the binary: configs/k8s/*.yaml (parsed with python3-yaml: required fields, ports, probe paths,
# labels, HPA target, drain budget < grace period, image uid), configs/primed.service
# (`systemd-analyze verify`, `systemd-analyze security --offline` exposure score, hardening keys,
# TimeoutStopSec > drain budget), configs/nginx-lb.conf (`nginx -t`), and every PRIMED_* setting
# they use is accepted by build/primed. The checker also runs on mutated copies, which must fail.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${PRIMED_BIN:-$ROOT/build/primed}
PRIMED_BIN=$BIN
. scripts/lib.sh # starts, watches and stops the servers of check 5; removes $TMP at exit
TMP=$LIB_TMP
fail=0
ok()  { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

# Debian's python3 has python3-yaml; a pyenv/venv python on PATH may not.
PY=python3
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import yaml' 2>/dev/null && PY=/usr/bin/python3
if ! "$PY" -c 'import yaml' 2>/dev/null; then
  echo "FAIL python3 cannot import yaml: apt-get install python3-yaml (scripts/install-deps.sh)"
  exit 1
fi

# check_configs CONFIG_DIR DOCKER_STEPS: the cross-reference checker (exit 1 + FAIL lines).
check_configs() {
  "$PY" - "$1" "$2" <<'PY'
import os
import re
import sys

import yaml

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
    return cond


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def env_map(container):
    out = {}
    for e in container.get("env", []):
        check("name" in e, f"env entry without name: {e}")
        out[e.get("name")] = e
    return out


def port_of(listen):
    m = re.fullmatch(r"(.+):(\d+)", listen or "")
    return (m.group(1), int(m.group(2))) if m else (None, None)


def to_bytes(q):
    """Kubernetes memory quantity → bytes."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
             "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", str(q))
    if not m or (m.group(2) and m.group(2) not in units):
        failures.append(f"bad memory quantity {q!r}")
        return 0
    return int(float(m.group(1)) * units.get(m.group(2), 1))


def to_millicpu(q):
    s = str(q)
    if s.endswith("m"):
        return int(s[:-1])
    return int(float(s) * 1000)


def resolve_port(container, ref):
    """A probe/service port: a name of a container port or a number."""
    for p in container.get("ports", []):
        if ref == p.get("name") or ref == p.get("containerPort"):
            return p.get("containerPort")
    return None


def parse_unit(path):
    """systemd unit → {section: [(key, value), ...]} (keys may repeat)."""
    sections, cur = {}, None
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                cur = line[1:-1]
                sections.setdefault(cur, [])
                continue
            if not check(cur is not None and "=" in line, f"{path}: bad line {line!r}"):
                continue
            k, v = line.split("=", 1)
            sections[cur].append((k.strip(), v.strip()))
    return sections


def main():
    cfg, steps = sys.argv[1], sys.argv[2]
    k8s = os.path.join(cfg, "k8s")
    docs = {}
    for name in sorted(os.listdir(k8s)):
        if not name.endswith(".yaml"):
            continue
        for d in load_all(os.path.join(k8s, name)):
            for field in ("apiVersion", "kind", "metadata"):
                check(field in d, f"{name}: missing {field}")
            check("name" in d.get("metadata", {}), f"{name}: missing metadata.name")
            docs.setdefault(d.get("kind"), []).append(d)

    for kind in ("Service", "HorizontalPodAutoscaler"):
        check(len(docs.get(kind, [])) == 1, f"expected exactly one {kind}")
    # One stable Deployment and at most one canary (pod label track: canary, issue 15).
    deps = docs.get("Deployment", [])
    canaries = [d for d in deps if track_of(d) == "canary"]
    stables = [d for d in deps if track_of(d) != "canary"]
    check(len(stables) == 1, f"expected exactly one stable Deployment, got {len(stables)}")
    check(len(canaries) <= 1, f"expected at most one canary Deployment, got {len(canaries)}")
    if failures:
        return
    dep, svc, hpa = stables[0], docs["Service"][0], docs["HorizontalPodAutoscaler"][0]
    got = check_deployment(dep, steps)
    if got is None:
        return
    tlabels, c, cport, res = got
    for can in canaries:
        cname = can["metadata"]["name"]
        cgot = check_deployment(can, steps)
        if cgot is None:
            continue
        ctl, cc, ccport, _ = cgot
        check(can["spec"].get("replicas") == 1, f"canary {cname} must run 1 replica")
        check(tlabels.get("track") == "stable",
              "the stable Deployment's pods need track: stable beside the canary")
        ssel = dep["spec"]["selector"].get("matchLabels", {})
        check(not all(ctl.get(k) == v for k, v in ssel.items()),
              f"the stable Deployment's selector {ssel} also selects the canary's pods")
        ssvc = svc["spec"].get("selector", {})
        check(ssvc and all(ctl.get(k) == v for k, v in ssvc.items()),
              f"the Service selector {ssvc} does not route to the canary ({ctl})")
        check(ccport == cport, "canary http port differs from the stable one")
        check(sorted(env_map(cc)) == sorted(env_map(c)),
              "canary and stable must set the same PRIMED_* settings (compare like with like)")
    if failures:
        return
    run_rest(dep, svc, hpa, tlabels, c, cport, res, docs, cfg, steps)


def track_of(d):
    return d.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {}).get("track")


def check_deployment(dep, steps):
    """The checks every Deployment of primed passes; (template labels, container, port,
    resources), or None when it is too broken to go on."""
    check(dep["apiVersion"] == "apps/v1", "Deployment apiVersion must be apps/v1")
    spec = dep["spec"]
    tmpl = spec["template"]
    tlabels = tmpl["metadata"].get("labels", {})
    sel = spec["selector"].get("matchLabels", {})
    check(sel and all(tlabels.get(k) == v for k, v in sel.items()),
          f"Deployment selector {sel} does not match template labels {tlabels}")
    pod = tmpl["spec"]
    cs = [c for c in pod["containers"] if c.get("name") == "primed"]
    if not check(len(cs) == 1, "Deployment needs one container named primed"):
        return None
    c = cs[0]
    env = env_map(c)
    http = [p for p in c.get("ports", []) if p.get("name") == "http"]
    check(len(http) == 1, "container needs one port named http")
    cport = http[0]["containerPort"] if http else None

    host, lport = port_of(env.get("PRIMED_LISTEN", {}).get("value"))
    check(lport == cport, f"PRIMED_LISTEN port {lport} != containerPort {cport}")
    check(host in ("0.0.0.0", "::", "[::]"),
          f"PRIMED_LISTEN host {host} must be a wildcard so the kubelet and Service reach it")
    dhost, _ = port_of(env.get("PRIMED_DEBUG_LISTEN", {}).get("value"))
    check(dhost in ("127.0.0.1", "[::1]", "::1") or
          env.get("PRIMED_DEBUG_LISTEN", {}).get("value") == "off",
          "PRIMED_DEBUG_LISTEN must be loopback or off (pprof is not for the network)")

    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        p = c.get(probe)
        if not check(p and "httpGet" in p, f"{probe} with httpGet is required"):
            continue
        check(p["httpGet"].get("path") == path, f"{probe} path must be {path}")
        check(resolve_port(c, p["httpGet"].get("port")) == cport,
              f"{probe} port {p['httpGet'].get('port')} is not the container's http port")
    if "startupProbe" in c:
        sp = c["startupProbe"]["httpGet"]
        check(resolve_port(c, sp.get("port")) == cport, "startupProbe port mismatch")

    shutdown = int(env.get("PRIMED_SHUTDOWN_TIMEOUT", {}).get("value", "10"))
    grace = pod.get("terminationGracePeriodSeconds", 30)
    pre = 0
    cmd = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    if cmd[:1] == ["sleep"] and len(cmd) == 2:
        pre = int(cmd[1])
    check(grace > shutdown + pre,
          f"terminationGracePeriodSeconds {grace} must exceed preStop {pre} s + "
          f"PRIMED_SHUTDOWN_TIMEOUT {shutdown} s")

    res = c.get("resources", {})
    for kind in ("requests", "limits"):
        for r in ("cpu", "memory"):
            check(r in res.get(kind, {}), f"resources.{kind}.{r} is required")
    if not failures:
        check(to_millicpu(res["requests"]["cpu"]) <= to_millicpu(res["limits"]["cpu"]),
              "cpu request above limit")
        mem_limit = to_bytes(res["limits"]["memory"])
        check(to_bytes(res["requests"]["memory"]) <= mem_limit, "memory request above limit")
        bv = env.get("PRIMED_MEMORY_BUDGET", {}).get("value", "auto")
        # auto: 1/4 of the limit, 16 MiB .. 256 MiB (memwatch_auto_budget)
        budget = min(max(mem_limit // 4, 16 << 20), 256 << 20) if bv in ("auto", "0") else int(bv)
        check(budget <= mem_limit // 2,
              f"PRIMED_MEMORY_BUDGET {budget} leaves no headroom under the limit {mem_limit}")
    w = env.get("PRIMED_WORKERS")
    if w and "valueFrom" in w:
        ref = w["valueFrom"].get("resourceFieldRef", {})
        check(ref.get("resource") == "limits.cpu" and ref.get("containerName") == "primed",
              "PRIMED_WORKERS should follow the container's cpu limit")

    psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True or csc.get("runAsNonRoot") is True,
          "runAsNonRoot must be true")
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    check(isinstance(uid, int) and uid > 0, "runAsUser must be a non-zero uid")
    check(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem must be true")
    check(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation must be false")
    check("ALL" in csc.get("capabilities", {}).get("drop", []), "capabilities must drop ALL")
    mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
    check("/tmp" in mounts, "a writable /tmp volume is needed with a read-only root fs")
    with open(steps, encoding="utf-8") as f:
        m = re.search(r"^primed_uid=(\d+)", f.read(), re.M)
    check(m and int(m.group(1)) == uid,
          f"runAsUser {uid} != the uid the image creates ({m.group(1) if m else 'none'})")

    ann = tmpl["metadata"].get("annotations", {})
    check(ann.get("prometheus.io/scrape") == "true", "prometheus.io/scrape must be \"true\"")
    check(str(ann.get("prometheus.io/port")) == str(cport), "prometheus.io/port != http port")
    check(ann.get("prometheus.io/path") == "/metrics", "prometheus.io/path must be /metrics")
    return tlabels, c, cport, res


def run_rest(dep, svc, hpa, tlabels, c, cport, res, docs, cfg, steps):

    # --- Service ---
    check(svc["apiVersion"] == "v1", "Service apiVersion must be v1")
    ssel = svc["spec"].get("selector", {})
    check(ssel and all(tlabels.get(k) == v for k, v in ssel.items()),
          f"Service selector {ssel} selects no pod of the Deployment ({tlabels})")
    sports = svc["spec"].get("ports", [])
    check(sports, "Service needs ports")
    for p in sports:
        check(resolve_port(c, p.get("targetPort")) == cport,
              f"Service targetPort {p.get('targetPort')} is not the container's http port")

    # --- HPA ---
    check(hpa["apiVersion"] == "autoscaling/v2", "HPA apiVersion must be autoscaling/v2")
    ref = hpa["spec"]["scaleTargetRef"]
    check(ref.get("kind") == "Deployment" and ref.get("apiVersion") == "apps/v1",
          "HPA must target an apps/v1 Deployment")
    check(ref.get("name") == dep["metadata"]["name"],
          f"HPA targets {ref.get('name')!r}, the Deployment is {dep['metadata']['name']!r}")
    mn, mx = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
    check(1 <= mn <= mx, f"HPA needs 1 <= minReplicas {mn} <= maxReplicas {mx}")
    for m in hpa["spec"].get("metrics", []):
        if m.get("type") == "Resource":
            rname = m["resource"]["name"]
            check(rname in res.get("requests", {}),
                  f"HPA scales on {rname} utilisation but the container requests no {rname}")

    # --- ServiceMonitor (optional) ---
    for sm in docs.get("ServiceMonitor", []):
        msel = sm["spec"]["selector"].get("matchLabels", {})
        slabels = svc["metadata"].get("labels", {})
        check(msel and all(slabels.get(k) == v for k, v in msel.items()),
              "ServiceMonitor selector does not match the Service labels")
        names = {p.get("name") for p in sports}
        for ep in sm["spec"].get("endpoints", []):
            check(ep.get("port") in names, f"ServiceMonitor port {ep.get('port')} not in Service")
            check(ep.get("path", "/metrics") == "/metrics", "ServiceMonitor path must be /metrics")

    # --- systemd unit ---
    unit = parse_unit(os.path.join(cfg, "primed.service"))
    service = unit.get("Service", [])
    kv = {}
    for k, v in service:
        kv.setdefault(k, []).append(v)
    uenv = {}
    for v in kv.get("Environment", []):
        for item in v.split():
            name, _, val = item.strip('"').partition("=")
            uenv[name] = val
    required = {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "PrivateDevices": "yes", "KillSignal": "SIGTERM",
        "Restart": "on-failure",
    }
    for k, v in required.items():
        check(kv.get(k, [None])[-1] == v, f"primed.service: {k}={v} is required")
    check(kv.get("DynamicUser", ["no"])[-1] == "yes" or "User" in kv,
          "primed.service: DynamicUser=yes or User= is required")
    fams = set(" ".join(kv.get("RestrictAddressFamilies", [])).split())
    check(fams == {"AF_INET", "AF_INET6", "AF_UNIX"},
          f"primed.service: RestrictAddressFamilies must be AF_INET AF_INET6 AF_UNIX, got {fams}")
    check("MemoryMax" in kv, "primed.service: MemoryMax is required")
    stop = kv.get("TimeoutStopSec", ["90"])[-1]
    stop_s = int(re.sub(r"s$", "", stop)) if re.fullmatch(r"\d+s?", stop) else -1
    ushut = int(uenv.get("PRIMED_SHUTDOWN_TIMEOUT", "10"))
    check(stop_s > ushut,
          f"primed.service: TimeoutStopSec {stop} must exceed PRIMED_SHUTDOWN_TIMEOUT {ushut}")
    check(kv.get("ExecStart", [""])[-1].split()[0].startswith("/"),
          "primed.service: ExecStart needs an absolute path")


if __name__ == "__main__":
    main()
    for f in failures:
        print("FAIL:", f)
    sys.exit(1 if failures else 0)
PY
}

# 1. The real files pass.
if out=$(check_configs configs scripts/docker-steps.sh 2>&1); then
  ok "k8s + systemd cross-references"
else
  bad "k8s + systemd cross-references:"; echo "$out"
fi

# 2. Mutated copies fail: each mutation breaks one cross-reference the checker must catch.
mutate() { # name, file (relative to configs), sed expression
  local name=$1 file=$2 expr=$3
  rm -rf "$TMP/cfg" && cp -r configs "$TMP/cfg"
  sed -i "$expr" "$TMP/cfg/$file"
  if cmp -s "configs/$file" "$TMP/cfg/$file"; then bad "mutation $name did not change $file"; return; fi
  if check_configs "$TMP/cfg" scripts/docker-steps.sh >/dev/null 2>&1; then
    bad "checker accepted mutation: $name"
  else
    ok "checker rejects: $name"
  fi
}
mutate grace_period_below_drain      k8s/deployment.yaml 's/terminationGracePeriodSeconds: .*/terminationGracePeriodSeconds: 15/'
mutate readiness_on_healthz          k8s/deployment.yaml 's#path: /readyz#path: /healthz#'
mutate listen_port_not_container     k8s/deployment.yaml 's#"0.0.0.0:8080"#"0.0.0.0:9090"#'
mutate service_selects_nothing       k8s/service.yaml    '/selector:/,/ports:/ s#app.kubernetes.io/name: primed#app.kubernetes.io/name: primes#'
mutate hpa_targets_other_deployment  k8s/hpa.yaml        's#    name: primed#    name: primed-old#'
mutate writable_root_fs              k8s/deployment.yaml 's#readOnlyRootFilesystem: true#readOnlyRootFilesystem: false#'
mutate uid_differs_from_image        k8s/deployment.yaml 's#runAsUser: 10001#runAsUser: 10002#'
mutate canary_outside_service         k8s/canary.yaml     '/template:/,/annotations:/ s#app.kubernetes.io/name: primed#app.kubernetes.io/name: primed-canary#'
mutate canary_two_replicas            k8s/canary.yaml     's#replicas: 1#replicas: 2#'
mutate stable_selects_canary          k8s/deployment.yaml '/matchLabels:/,/strategy:/ { /track: stable/d }'
mutate canary_other_settings          k8s/canary.yaml     's#PRIMED_HEAP_DUMP_DIR#PRIMED_HEAP_DUMP_KEEP#'
mutate unit_stop_timeout_too_short   primed.service      's#^TimeoutStopSec=.*#TimeoutStopSec=10#'
mutate unit_without_protect_system   primed.service      's#^ProtectSystem=strict#ProtectSystem=full#'

# 3. systemd: the unit as systemd itself reads it. ExecStart must exist for verify, so point it
#    at the binary under test; any message (unknown key, bad value) is a failure.
if command -v systemd-analyze >/dev/null; then
  exe=$BIN; [ -x "$exe" ] || exe=/bin/true
  sed "s#^ExecStart=/usr/local/bin/primed#ExecStart=$exe#" configs/primed.service > "$TMP/primed.service"
  if out=$(systemd-analyze verify "$TMP/primed.service" 2>&1) && [ -z "$out" ]; then
    ok "systemd-analyze verify"
  else
    bad "systemd-analyze verify: $out"
  fi
  sec=$(systemd-analyze security --offline=true "$TMP/primed.service" 2>&1 | tail -n 1)
  score=$(sed -n 's/.*exposure level for primed.service: \([0-9.]*\).*/\1/p' <<<"$sec")
  # 2.0 is systemd's boundary between "OK" and "MEDIUM" exposure.
  if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'; then
    ok "systemd-analyze security exposure $score <= 2.0"
  else
    bad "systemd-analyze security: $sec"
  fi
else
  # Without systemd the Python checker above still parsed the unit and its keys.
  echo "note systemd-analyze not installed: unit checked by the parser only"
fi

# 4. nginx parses the load-balancer config (the test_nginx_lb.sh runs it for real).
mkdir -p "$TMP/nginx/logs" "$TMP/nginx/tmp"
if out=$(nginx -t -q -p "$TMP/nginx/" -e logs/error.log -c "$ROOT/configs/nginx-lb.conf" 2>&1); then
  ok "nginx -t configs/nginx-lb.conf"
else
  bad "nginx -t: $out"
fi
# … and with its commented option uncommented: pi/count/nth balanced by a consistent hash of the
# query, so that the instances' π caches add up (docs/deployment.md).
sed -e 's/^\(\s*\)#hash: /\1/' "$ROOT/configs/nginx-lb.conf" >"$TMP/nginx/hash.conf"
if [ "$(grep -cE '^\s*hash \$arg_x\$arg_n\$arg_from\$arg_to consistent;' "$TMP/nginx/hash.conf")" != 1 ] ||
  ! grep -qE '^\s*location ~ \^/v1/\(pi\|count\|nth\)\$ \{' "$TMP/nginx/hash.conf"; then
  bad "configs/nginx-lb.conf: no '#hash: ' option (upstream and location) to uncomment"
elif out=$(nginx -t -q -p "$TMP/nginx/" -e logs/error.log -c "$TMP/nginx/hash.conf" 2>&1) && [ -z "$out" ]; then
  ok "nginx -t configs/nginx-lb.conf with the '#hash: ' option uncommented"
else
  bad "nginx -t with the hash option: $out"
fi

# 5. Every PRIMED_* setting the configs set is one primed accepts: start the real binary with
#    each config's environment (listen moved to an ephemeral loopback port, debug off) and expect
#    it to come up and answer /healthz, then drain and exit 0 on SIGTERM.
env_of_k8s() {
  "$PY" - <<'PY'
import yaml
d = [x for x in yaml.safe_load_all(open("configs/k8s/deployment.yaml")) if x][0]
c = d["spec"]["template"]["spec"]["containers"][0]
for e in c.get("env", []):
    v = e.get("value")
    if v is None and "resourceFieldRef" in e.get("valueFrom", {}):
        v = "2"  # what the downward API gives for limits.cpu: 2
    print(f"{e['name']}={v}")
PY
}
env_of_unit() { sed -n 's/^Environment=//p' configs/primed.service | tr ' ' '\n' | tr -d '"'; }
env_of_dockerfile() { sed -n 's/^ENV //p' Dockerfile | tr ' ' '\n' | grep '^PRIMED_'; }

start_with_env() { # name, then NAME=VALUE lines on stdin
  local name=$1 vars=() line
  while IFS= read -r line; do [ -n "$line" ] && vars+=("$line"); done
  # The launcher's flags (--listen 127.0.0.1:0, --port-file) override the config's address.
  LIB_WRAP=(env "${vars[@]}")
  if ! primed_try_start "$name" --debug-listen off; then
    LIB_WRAP=()
    bad "$name env: primed did not start (its log is above)"
    return
  fi
  LIB_WRAP=()
  local code portv="${name}_PORT" rcv="${name}_RC" rc
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:${!portv}/healthz" || true)
  primed_stop "$name" 15 || true
  rc=${!rcv}
  [ "$rc" = 124 ] && rc=timeout
  if [ "$code" = 200 ] && [ "$rc" = 0 ]; then
    ok "$name env accepted by primed (/healthz 200, SIGTERM exit 0)"
  else
    bad "$name env: /healthz $code, exit $rc"
  fi
}

if [ -x "$BIN" ]; then
  # Not `env_of_k8s | start_with_env`: a pipeline would run the function in a subshell, where
  # bad's fail=1 is lost (the check could never fail) and the launcher's exit cleanup does not run.
  start_with_env k8s < <(env_of_k8s)
  start_with_env systemd < <(env_of_unit)
  if [ -f Dockerfile ]; then start_with_env dockerfile < <(env_of_dockerfile); fi
else
  bad "no primed binary at $BIN (build it first: make)"
fi

exit $fail
