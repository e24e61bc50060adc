#!/usr/bin/env bash
# test_observability.sh — /metrics as the real tools see it, in every build variant:
#  - `promtool check metrics` accepts live scrapes (main and debug listener) taken under load;
#  - a real Prometheus server scrapes primed every second: up == 1, request rate > 0, the alert
#    rules load, and every Grafana dashboard expression is valid PromQL with data behind it;
#  - `promtool check rules` and `promtool test rules` pass on configs/alerts.yml;
#  - debug paths on the main listener are 404; in builds without tcmalloc every profiling
#    endpoint on the debug listener is 501 (the pprof checks proper are tests/test_pprof.sh).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. tests/obs_lib.sh
VARIANT=${PRIMED_VARIANT:-release}
for tool in promtool prometheus curl python3; do
  command -v $tool >/dev/null || obs_fail "$tool not installed (scripts/install-deps.sh)"
done

# ---- rules ------------------------------------------------------------------------------------
promtool check rules configs/alerts.yml >/dev/null || obs_fail "promtool check rules"
promtool test rules configs/alerts_test.yml >/dev/null || obs_fail "promtool test rules"
promtool check config configs/prometheus.yml >/dev/null 2>&1 || obs_fail "promtool check config"
obs_ok "alert rules check and unit tests"

# ---- live scrapes under load ------------------------------------------------------------------
obs_start P --workers 2
obs_load "$P_PORT" 20
sleep 2
for listener in "$P_PORT" "$P_DPORT"; do
  for i in 1 2 3; do
    hdr="$OBS_TMP/h.$listener.$i"
    curl -sS -D "$hdr" -o "$OBS_TMP/scrape.$listener.$i" "http://127.0.0.1:$listener/metrics" ||
      obs_fail "scrape of :$listener failed"
    grep -qi '^content-type: text/plain; version=0.0.4; charset=utf-8' "$hdr" ||
      obs_fail "content type of /metrics: $(grep -i content-type "$hdr")"
    promtool check metrics <"$OBS_TMP/scrape.$listener.$i" >"$OBS_TMP/lint" 2>&1 ||
      { cat "$OBS_TMP/lint" >&2; obs_fail "promtool check metrics rejected a scrape of :$listener"; }
    sleep 0.3
  done
done
s="$OBS_TMP/scrape.$P_PORT.3"
for fam in primed_http_requests_total primed_http_request_duration_seconds \
           primed_http_response_bytes_total primed_http_connections \
           primed_sieve_numbers_sieved_total primed_sieve_segments_total \
           primed_sieve_primes_emitted_total primed_sieve_table_bytes \
           process_cpu_seconds_total process_resident_memory_bytes process_virtual_memory_bytes \
           process_open_fds process_max_fds process_start_time_seconds process_threads \
           primed_build_info primed_memory_limit_bytes primed_memory_used_bytes \
           primed_memory_high_water_bytes primed_memory_shedding primed_heap_dumps_total; do
  grep -q "^# TYPE $fam " "$s" || obs_fail "family $fam missing from /metrics"
done
if [ "$VARIANT" = release ]; then
  grep -q '^primed_tcmalloc_allocated_bytes [1-9]' "$s" || obs_fail "tcmalloc gauges missing"
else
  grep -q '^primed_tcmalloc_' "$s" && obs_fail "tcmalloc gauges in a build without tcmalloc"
fi
grep -q '^primed_http_requests_total{handler="count",method="GET",code="200"} [1-9]' "$s" ||
  obs_fail "no counted /v1/count requests in the scrape"
grep -q '^primed_http_requests_total{handler="other",method="GET",code="404"} [1-9]' "$s" ||
  obs_fail "unknown paths not counted as handler=other code=404"
grep -q '^primed_sieve_numbers_sieved_total [1-9]' "$s" || obs_fail "sieve counter did not move"
pid_start=$(awk '/^process_start_time_seconds /{print int($2)}' "$s")
now=$(date +%s)
[ $((now - pid_start)) -ge 0 ] && [ $((now - pid_start)) -lt 120 ] ||
  obs_fail "process_start_time_seconds $pid_start is not the start of this process ($now)"
obs_ok "promtool check metrics on 6 scrapes under load (main + debug listener)"

# ---- debug paths are not served on the main listener ------------------------------------------
for path in /debug/pprof/ /debug/pprof/heap /debug/heap /debug/pprof/profile?seconds=1 \
            /debug/pprof/symbol /symbolz /debug/stats /debug/pprof/cmdline; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P_PORT$path")
  [ "$code" = 404 ] || obs_fail "main listener answered $code for $path (want 404)"
done
obs_ok "debug paths on the main listener are 404"

if [ "$VARIANT" != release ]; then
  for path in /debug/pprof/heap /debug/heap "/debug/pprof/profile?seconds=1" \
              /debug/pprof/symbol /symbolz /debug/stats /debug/pprof/cmdline; do
    body=$(curl -s -w '\n%{http_code}' "http://127.0.0.1:$P_DPORT$path")
    [ "${body##*$'\n'}" = 501 ] || obs_fail "debug listener answered ${body##*$'\n'} for $path (want 501)"
    grep -q '"not_implemented"' <<<"$body" || obs_fail "501 body for $path: $body"
  done
  obs_ok "every tcmalloc/gperftools endpoint is 501 not_implemented in the $VARIANT build"
  # The index is the route table's debug rows, some of which need no tcmalloc: it answers.
  body=$(curl -s -w '\n%{http_code}' "http://127.0.0.1:$P_DPORT/debug/pprof/")
  [ "${body##*$'\n'}" = 200 ] || obs_fail "debug index answered ${body##*$'\n'} (want 200)"
  grep -q '/debug/requests' <<<"$body" || obs_fail "debug index does not list /debug/requests"
  obs_ok "the debug index answers in the $VARIANT build and lists /debug/requests"
fi

# ---- a real Prometheus scrapes primed ----------------------------------------------------------
PP=$(obs_free_port)
mkdir -p "$OBS_TMP/prom"
cp configs/alerts.yml "$OBS_TMP/prom/alerts.yml"
cat >"$OBS_TMP/prom/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [alerts.yml]
scrape_configs:
  - job_name: primed
    static_configs: [{targets: ["127.0.0.1:$P_PORT"]}]
  - job_name: primed-debug
    static_configs: [{targets: ["127.0.0.1:$P_DPORT"]}]
EOF
prometheus --config.file="$OBS_TMP/prom/prometheus.yml" --storage.tsdb.path="$OBS_TMP/prom/data" \
  --web.listen-address="127.0.0.1:$PP" --log.level=warn >"$OBS_TMP/prom.log" 2>&1 &
OBS_PIDS+=($!)
prom_pid=$!

query() { # PromQL → JSON on stdout
  curl -s -G "http://127.0.0.1:$PP/api/v1/query" --data-urlencode "query=$1"
}
# Value of the first result of a scalar-ish query, or empty.
qvalue() {
  query "$1" | python3 -c 'import json,sys
d=json.load(sys.stdin); r=d.get("data",{}).get("result",[])
print(r[0]["value"][1] if d.get("status")=="success" and r else "")' 2>/dev/null
}

ready=0
for i in $(seq 100); do
  curl -sf "http://127.0.0.1:$PP/-/ready" >/dev/null 2>&1 && { ready=1; break; }
  kill -0 $prom_pid 2>/dev/null || break
  sleep 0.2
done
[ $ready = 1 ] || { tail "$OBS_TMP/prom.log" >&2; obs_fail "prometheus did not become ready"; }

# keep traffic flowing while Prometheus takes its first scrapes (bounded: 25 s)
obs_load "$P_PORT" 25
up=""; rate=""
for i in $(seq 30); do
  up=$(qvalue 'up{job="primed"}')
  rate=$(qvalue 'sum(rate(primed_http_requests_total{job="primed"}[5s]))')
  if [ "$up" = 1 ] && [ -n "$rate" ] && python3 -c "import sys; sys.exit(0 if float('$rate') > 0 else 1)"; then
    break
  fi
  sleep 1
done
[ "$up" = 1 ] || obs_fail "prometheus: up{job=\"primed\"} = '$up' after 30 s"
python3 -c "import sys; sys.exit(0 if float('${rate:-0}') > 0 else 1)" ||
  obs_fail "prometheus: rate(primed_http_requests_total) = '$rate'"
[ "$(qvalue 'up{job="primed-debug"}')" = 1 ] || obs_fail "prometheus: debug listener target not up"
obs_ok "prometheus scrapes primed: up=1, request rate ${rate}/s"

# the rules loaded into the real server, healthy
rules=$(curl -s "http://127.0.0.1:$PP/api/v1/rules")
python3 - "$rules" <<'EOF' || obs_fail "prometheus did not load the alert rules"
import json, sys
d = json.loads(sys.argv[1])
rules = [r for g in d["data"]["groups"] for r in g["rules"]]
names = {r["name"] for r in rules}
want = {"PrimedDown", "PrimedHighErrorRatio", "PrimedHighLatencyP99", "PrimedQueueSaturated",
        "PrimedMemoryGrowing", "PrimedThreadsGrowing", "PrimedMemoryHighWater", "PrimedOOMKilled",
        "PrimedCanaryMemoryGrowth"}
assert want <= names, names
assert all(r.get("health") in ("ok", "unknown") for r in rules), [(r["name"], r.get("lastError")) for r in rules]
EOF
obs_ok "prometheus loaded the 9 alert rules"

# every dashboard expression parses; the ones on always-present families return data
python3 - "$PP" <<'EOF' || obs_fail "a Grafana dashboard query is not valid PromQL"
import json, sys, urllib.parse, urllib.request
port = sys.argv[1]
d = json.load(open("configs/grafana-dashboard.json"))
bad = []
for p in d["panels"]:
    for t in p.get("targets", []):
        e = (t["expr"].replace("$__rate_interval", "10s").replace('"$job"', '".*"')
             .replace('"$instance"', '".*"'))
        url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": e})
        try:
            r = json.load(urllib.request.urlopen(url, timeout=5))
        except Exception as ex:  # 400 = parse error
            bad.append((p["title"], e, str(ex)))
            continue
        if r["status"] != "success":
            bad.append((p["title"], e, r))
if bad:
    print(bad, file=sys.stderr)
    sys.exit(1)
EOF
obs_ok "every dashboard expression is accepted by prometheus"
for p in "${OBS_LOAD_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
obs_stop P
obs_ok "primed exits 0 on SIGTERM after all this"
exit 0
