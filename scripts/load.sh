#!/usr/bin/env bash
# Load test of the example server (issue 8). Manual: .ci/run does not run it.
#
# Builds the release server, starts it on 127.0.0.1 (a free port), registers and
# verifies one user (the token comes from the console mailer's output), logs in,
# then measures with wrk, LOAD_SECS per phase:
#   - the hasher alone (benches' hash-rate, same parameters and permits, the
#     server idle), before and after the login phases: verifies/s one at a time
#     (CPUs x that rate is the target's ideal, "CPUs / single-verify time from
#     the bench", measured in this run), then one per permit at once;
#   - logins one at a time (their mean time: one verify seen through HTTP and
#     the stores), then logins/s at concurrency 8 and 64 against those ideals;
#   - GET /healthz and GET /api/v1/users/me (session cookie) at 8 and 64
#     connections, in the order A B B A so that drift weighs on both alike:
#     requests/s, p50, p99, and their ratio;
#   - GET /api/v1/users/me again from 64 connections, each waiting a random
#     time between requests so that together they ask PACED_SHARE (half) of
#     the rate just measured at 64: its p50 and p99 at a load the server
#     carries, where the saturated phase measures its queue;
#   - peak RSS (VmHWM of /proc/<pid>/status);
#   - a flood: FLOOD_CONNECTIONS connections logging in for FLOOD_SECS, while 4
#     connections read /users/me and a probe logs in every 50 ms: peak RSS
#     against base + permits x m + 64 MiB, the 503s and their Retry-After, the
#     time a 503 takes (server log and probe), /users/me p99 meanwhile.
# Each phase's CPU time is accounted (server, wrk, PostgreSQL + Redis, anything
# else); a phase during which anything else took more than DISTURBED_PCT% of
# the machine (a neighbour's build) is repeated after a quiet spell, twice at
# most, and the table's last row says what the phases saw.
#
# It does this on the in-process store and, when DATABASE_URL and REDIS_URL are
# both set, again on PostgreSQL + Redis (built with --features postgres,redis;
# the server runs its migrations with --migrate; use a database of its own: a
# run leaves its user, sessions and audit rows there). Prints one markdown table
# on stdout; progress goes to stderr. The server logs 5xx answers sampled (S9):
# per reason, the first line per second in full and the rest counted in summary
# lines with their request ids; the table counts both, and the size of the log.
# The work directory is deleted at the end.
#
#   scripts/load.sh                                   # about 2 min after the build
#   createdb -h 127.0.0.1 -U postgres auth_load       # once
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/auth_load \
#     REDIS_URL=redis://127.0.0.1:6379 scripts/load.sh  # about 4 min
#
# Knobs (environment): LOAD_SECS (10), FLOOD_SECS (30), FLOOD_CONNECTIONS (256),
# HASH_CONCURRENCY (default: CPUs), SKIP_BUILD=1 (use the binary already built in
# CARGO_TARGET_DIR or target/), LOAD_BUDGET_SECS (600: bound of everything after
# the build), DISTURBED_PCT (5), KEEP_LOGS=1 (keep the work directory), AUTH_REV
# (label of the source measured; default: git rev-parse), FAST_ARGON2=1 (build
# with the fast-argon2 feature and measure hash-rate with --fast), PACED_SHARE
# (0.5), LOGIN_ACCOUNTS (128: the accounts the login phases cycle through; keep
# it at least twice the largest concurrency, 64).
# Traffic goes to 127.0.0.1 only; every phase is bounded in time.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

LOAD_SECS=${LOAD_SECS:-10}
FLOOD_SECS=${FLOOD_SECS:-30}
FLOOD_CONNECTIONS=${FLOOD_CONNECTIONS:-256}
LOAD_BUDGET_SECS=${LOAD_BUDGET_SECS:-600}
DISTURBED_PCT=${DISTURBED_PCT:-5}
PACED_SHARE=${PACED_SHARE:-0.5}
LOGIN_ACCOUNTS=${LOGIN_ACCOUNTS:-128}
CPUS=$(nproc)
PERMITS=${HASH_CONCURRENCY:-$CPUS}
M_KIB=${ARGON2_M_COST:-19456}
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
RUN_ID="$(date +%s)-$$"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/auth-load.XXXXXX")
PASSWORD='correct horse battery staple, load'

LOG_TAG=load
# shellcheck source=scripts/lib/load-common.sh
. scripts/lib/load-common.sh

need_tools

BACKENDS=(memory)
FEATURE_LIST=()
if [ "${FAST_ARGON2:-0}" = 1 ]; then FEATURE_LIST+=(fast-argon2); fi
if [ -n "${DATABASE_URL:-}" ] && [ -n "${REDIS_URL:-}" ]; then
  BACKENDS+=(pgredis)
  FEATURE_LIST+=(postgres redis)
elif [ -n "${DATABASE_URL:-}${REDIS_URL:-}" ]; then
  log "only one of DATABASE_URL and REDIS_URL is set: measuring the memory store only"
fi
FEATURES=()
if (( ${#FEATURE_LIST[@]} )); then FEATURES=(--features "$(IFS=,; echo "${FEATURE_LIST[*]}")"); fi
HASHING=$([ "${FAST_ARGON2:-0}" = 1 ] && echo "argon2-rust (fast-argon2)" || echo "argon2 (RustCrypto)")

BUILD_START=$SECONDS
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "building: cargo build --release -p example-server ${FEATURES[*]}"
  cargo build --release --quiet -p example-server "${FEATURES[@]}" >&2
  cargo build --release --quiet -p auth-benches --bin hash-rate >&2
fi
SERVER_BIN="$TARGET_DIR/release/example-server"
[ -x "$SERVER_BIN" ] || die "no server binary at $SERVER_BIN"
HASH_RATE_BIN="$TARGET_DIR/release/hash-rate"
[ -x "$HASH_RATE_BIN" ] || die "no hash-rate binary at $HASH_RATE_BIN"
HASH_RATE_ARGS=(--secs "$(( (LOAD_SECS + 1) / 2 ))")
if [ "${FAST_ARGON2:-0}" = 1 ]; then HASH_RATE_ARGS+=(--fast); fi
BUILD_SECS=$(( SECONDS - BUILD_START ))
MEASURE_START=$SECONDS

# --- one backend -------------------------------------------------------------
# hash_rate BACKEND HALF: the hasher alone (benches' hash-rate), into R.
hash_rate() {
  local out="$WORK/$1.hashrate_$2.txt"
  budget_check
  log "[$1] hash-rate ($2): the hasher alone"
  env HASH_CONCURRENCY="$PERMITS" "$HASH_RATE_BIN" "${HASH_RATE_ARGS[@]}" >"$out" 2>&1 \
    || die "[$1] hash-rate failed: $(tail -5 "$out")"
  parse_result "$1.hashrate_$2" "$out"
}

measure() {
  local b=$1
  CUR_BACKEND=$b
  local -a envs=(
    SECRET_KEY="$(head -c 48 /dev/urandom | base64 | tr -d '\n')"
    LOG_FORMAT=json
    HASH_CONCURRENCY="$PERMITS"
    TRUSTED_PROXIES=127.0.0.1
  )
  local -a args=()
  if [ "$b" = pgredis ]; then
    envs+=(DATABASE_URL="$DATABASE_URL" REDIS_URL="$REDIS_URL" REDIS_KEY_PREFIX="load-$RUN_ID")
    args+=(--migrate)
  fi
  start_server "$b" "${envs[@]}" -- "${args[@]}"
  local pid=$SERVER_PID err=$SERVER_ERR addr=$ADDR origin=$ORIGIN
  R[$b.base_rss_kib]=$(rss_kib "$pid" VmRSS)

  # LOGIN_ACCOUNTS users u1 .. uN for the login phases (each wrk thread
  # cycles through its own, one login in flight per account) and u0 for the
  # session of the /users/me phases and the flood's probe, verified with the
  # tokens the console mailer prints; registered from addresses of their own
  # (the server trusts 127.0.0.1 as its proxy), under the per-IP limit.
  local domain="load-$RUN_ID-$b.example"
  local email="u0@$domain"
  local body="{\"email\":\"$email\",\"password\":\"$PASSWORD\"}"
  # The flood's probe logs in as u<N+1>: its sessions never end u0's.
  local probe_body="{\"email\":\"u$(( LOGIN_ACCOUNTS + 1 ))@$domain\",\"password\":\"$PASSWORD\"}"
  local code k
  log "[$b] registering $(( LOGIN_ACCOUNTS + 2 )) users"
  for k in $(seq 0 "$(( LOGIN_ACCOUNTS + 1 ))"); do
    register_verified "$b" "u$k@$domain" "$PASSWORD" "10.77.$(( k / 256 )).$(( k % 256 ))"
  done

  local -a login=(WRK_METHOD=POST WRK_LOGINS="$LOGIN_ACCOUNTS" WRK_DOMAIN="$domain"
    WRK_PASSWORD="$PASSWORD" WRK_BODY="$body" WRK_ORIGIN="$origin" WRK_COUNT=1)
  local short=$(( (LOAD_SECS + 1) / 2 ))
  # The hasher alone, without HTTP or stores (the server idles meanwhile): one
  # verify at a time (CPUs x its rate is the ideal login rate), then one per
  # permit at once. Run before and after the login phases and averaged, so that
  # a drift of the machine's speed weighs on both alike.
  hash_rate "$b" a
  run_wrk "$b.login1" 1 "$LOAD_SECS" /api/v1/auth/login "${login[@]}"
  run_wrk "$b.login8" 8 "$LOAD_SECS" /api/v1/auth/login "${login[@]}"
  run_wrk "$b.login64" 64 "$LOAD_SECS" /api/v1/auth/login "${login[@]}"
  hash_rate "$b" b
  for k in single_per_s concurrent_per_s; do
    R[$b.hashrate.$k]=$(calc "(${R[$b.hashrate_a.$k]} + ${R[$b.hashrate_b.$k]}) / 2" 2)
  done
  # The session of the /users/me phases, made after the login phases: the
  # session cap (max_sessions_per_user) cannot have ended it.
  login_cookie "$b" "$email" "$PASSWORD"
  local cookie=$COOKIE
  local -a me=(WRK_COOKIE="$cookie" WRK_COUNT=1)
  local c
  for c in 8 64; do
    # /healthz and /users/me in the order A B B A, half the time each, so that a
    # drift of the machine's speed weighs on both alike.
    run_wrk "$b.health$c.a" "$c" "$short" /healthz
    run_wrk "$b.me$c.a" "$c" "$short" /api/v1/users/me "${me[@]}"
    run_wrk "$b.me$c.b" "$c" "$short" /api/v1/users/me "${me[@]}"
    run_wrk "$b.health$c.b" "$c" "$short" /healthz
    merge_halves "$b.health$c"
    merge_halves "$b.me$c"
  done
  # /users/me from 64 connections paced to about half the rate measured at 64:
  # latency at a load the server can carry, where the saturated run above
  # measures mostly its queue (64 in flight / its rate, Little's law).
  local pace
  pace=$(calc "64 * 1000 / ($PACED_SHARE * ${R[$b.me64.rps]})" 1)
  R[$b.mepaced.pace_ms]=$pace
  run_wrk "$b.mepaced" 64 "$LOAD_SECS" /api/v1/users/me "${me[@]}" WRK_PACE_MS="$pace"
  R[$b.hwm_before_flood_kib]=$(rss_kib "$pid" VmHWM)

  # The flood, with /users/me traffic and a sequential login probe meanwhile.
  budget_check
  log "[$b] flood: $FLOOD_CONNECTIONS connections of logins for ${FLOOD_SECS}s"
  env "${login[@]}" timeout $(( FLOOD_SECS + 30 )) wrk -t"$CPUS" -c"$FLOOD_CONNECTIONS" \
    -d"${FLOOD_SECS}s" --timeout 10s -s "$WORK/wrk.lua" "$BASE/api/v1/auth/login" \
    >"$WORK/$b.flood.txt" 2>&1 &
  local flood=$!
  PIDS+=("$flood")
  sleep 2
  local during=$(( FLOOD_SECS - 5 ))
  python3 - "$addr" "$during" "$probe_body" "$origin" >"$WORK/$b.probe.txt" 2>&1 <<'PY' &
# Sequential logins during the flood, 20 per second at most: how fast a 503
# comes back, with which Retry-After, and how long an admitted login takes.
import http.client, sys, time
addr, secs, body, origin = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
host, port = addr.rsplit(":", 1)
lat, retry, errors = {}, {}, 0
conn = None
deadline = time.monotonic() + secs
while time.monotonic() < deadline:
    if conn is None:
        conn = http.client.HTTPConnection(host, int(port), timeout=15)
    t0 = time.perf_counter()
    try:
        conn.request("POST", "/api/v1/auth/login", body,
                     {"Content-Type": "application/json", "Origin": origin})
        r = conn.getresponse()
        r.read()
    except Exception:
        errors += 1
        conn.close()
        conn = None
        time.sleep(0.05)
        continue
    dt = (time.perf_counter() - t0) * 1000
    lat.setdefault(r.status, []).append(dt)
    if r.status == 503:
        ra = r.getheader("Retry-After") or "none"
        retry[ra] = retry.get(ra, 0) + 1
    if r.getheader("Connection", "").lower() == "close":
        conn.close()
        conn = None
    time.sleep(0.05)

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")

s503, s200 = lat.get(503, []), lat.get(200, [])
print("PROBE n=%d n503=%d p50_503_ms=%.2f p99_503_ms=%.2f max_503_ms=%.2f n200=%d p50_200_ms=%.1f "
      "max_200_ms=%.1f errors=%d retry_503=%s other=%s" % (
      sum(map(len, lat.values())), len(s503), pct(s503, 50), pct(s503, 99),
      max(s503) if s503 else float("nan"), len(s200), pct(s200, 50),
      max(s200) if s200 else float("nan"), errors,
      ",".join("%s:%d" % kv for kv in sorted(retry.items())) or "-",
      ",".join("%d:%d" % (k, len(v)) for k, v in sorted(lat.items()) if k not in (200, 503)) or "-"))
PY
  local probe=$!
  PIDS+=("$probe")
  # The flood's wrk and the probe run meanwhile: no repeats here.
  REPEAT=0 run_wrk "$b.meflood" 4 "$during" /api/v1/users/me "${me[@]}"
  wait "$probe" || die "[$b] the flood probe failed: $(tail -5 "$WORK/$b.probe.txt")"
  wait "$flood" || die "[$b] the flood's wrk failed: $(tail -5 "$WORK/$b.flood.txt")"
  parse_result "$b.flood" "$WORK/$b.flood.txt"
  parse_result "$b.probe" "$WORK/$b.probe.txt"
  sleep 1
  R[$b.hwm_kib]=$(rss_kib "$pid" VmHWM)
  R[$b.rss_after_kib]=$(rss_kib "$pid" VmRSS)
  code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "$BASE/api/v1/users/me")
  R[$b.me_after]=$code
  # The 5xx answers the server logged: lines in full (with the server's own
  # time of each 503) plus those counted in summary lines (S9); the log's size.
  python3 - "$err" >"$WORK/$b.srv503.txt" <<'PY'
import json, os, sys
xs, full, full500, summarised, summarised500, summaries, lines = [], 0, 0, 0, 0, 0, 0
for line in open(sys.argv[1], errors="replace"):
    lines += 1
    if '"status":5' not in line and "repeated log lines suppressed" not in line:
        continue
    try:
        fields = json.loads(line)["fields"]
    except (ValueError, KeyError, TypeError):
        continue
    if fields.get("message") == "repeated log lines suppressed":
        reason = str(fields.get("reason", ""))
        if reason[:1] == "5":
            summaries += 1
            summarised += int(fields.get("suppressed", 0))
            summarised500 += int(fields.get("suppressed", 0)) if reason.startswith("500 ") else 0
    elif isinstance(fields.get("status"), int) and fields["status"] >= 500:
        full += 1
        full500 += fields["status"] == 500
        if fields["status"] == 503:
            xs.append(float(fields["elapsed_ms"]))
xs.sort()
pct = lambda p: xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")
print("PROBE n=%d p50_ms=%.4f p99_ms=%.4f max_ms=%.3f logged=%d full=%d summaries=%d n500=%d lines=%d bytes=%d" % (
    len(xs), pct(50), pct(99), xs[-1] if xs else float("nan"), full + summarised, full, summaries,
    full500 + summarised500, lines, os.path.getsize(sys.argv[1])))
PY
  parse_result "$b.srv503" "$WORK/$b.srv503.txt"
  R[$b.server_5xx_logged]=${R[$b.srv503.logged]}
  R[$b.server_500]=${R[$b.srv503.n500]}
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  log "[$b] done"
}

# What was measured: AUTH_REV names it when the tree is not a git checkout.
REV=${AUTH_REV:-$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- 2>/dev/null || echo ', uncommitted changes')}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for b in "${BACKENDS[@]}"; do measure "$b"; done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
MEASURE_SECS=$(( SECONDS - MEASURE_START ))

# --- the table -----------------------------------------------------------------
g() { echo "${R[$1]:-n/a}"; }
mib() { calc "$1 / 1024" 0; }
cell() { # one backend's cell for a row
  local b=$1 row=$2
  case $row in
    single) calc "$(g $b.login1.secs) * 1000 / $(g $b.login1.requests)" 1 | sed 's/$/ ms/' ;;
    ideal)
      echo "$(calc "$CPUS * $(g $b.hashrate.single_per_s)" 0)/s (over HTTP: $(calc "$CPUS / ($(g $b.login1.secs) / $(g $b.login1.requests))" 0)/s)" ;;
    login8 | login64)
      local ideal http r
      ideal=$(calc "$CPUS * $(g $b.hashrate.single_per_s)" 3)
      http=$(calc "$CPUS / ($(g $b.login1.secs) / $(g $b.login1.requests))" 3)
      r=$(calc "$(g $b.$row.statuses | tr ',' '\n' | awk -F: '$1 == 200 { n = $2 } END { print n + 0 }') / $(g $b.$row.secs)" 1)
      echo "$r/s = $(calc "100 * $r / $ideal" 1)% of ideal ($(verdict "$r >= 0.9 * $ideal")), $(calc "100 * $r / $http" 1)% over HTTP, $(calc "100 * $r / $(g $b.hashrate.concurrent_per_s)" 1)% of the hasher alone at $PERMITS at once; p50 $(ms "$(g $b.$row.p50_ms)"), p99 $(ms "$(g $b.$row.p99_ms)"); statuses $(g $b.$row.statuses)" ;;
    hashrate)
      local one many
      one=$(g $b.hashrate.single_per_s)
      many=$(g $b.hashrate.concurrent_per_s)
      echo "one at a time $(calc "$one" 1)/s (before / after the logins: $(calc "$(g $b.hashrate_a.single_per_s)" 1) / $(calc "$(g $b.hashrate_b.single_per_s)" 1)); $PERMITS at once $(calc "$many" 1)/s = $(calc "100 * $many / ($PERMITS * $one)" 1)% of $PERMITS x the first" ;;
    health8 | health64 | me8 | me64 | meflood)
      echo "$(calc "$(g $b.$row.rps)" 0)/s; p50 $(ms "$(g $b.$row.p50_ms)"), p99 $(ms "$(g $b.$row.p99_ms)"); non-2xx $(g $b.$row.non2xx)" ;;
    ratio8 | ratio64)
      local n=${row#ratio}
      local q
      q=$(calc "$(g $b.me$n.rps) / $(g $b.health$n.rps)" 2)
      if [ "$b" = memory ]; then echo "$q ($(verdict "$q >= 0.8"))"
      elif [ "$n" = 64 ]; then echo "$q ($(verdict "$q >= 0.6"))"; else echo "$q"; fi ;;
    mepaced)
      local p99 share
      p99=$(g $b.mepaced.p99_ms)
      share=$(calc "100 * $(g $b.mepaced.rps) / $(g $b.me64.rps)" 0)
      echo "$(calc "$(g $b.mepaced.rps)" 0)/s = ${share}% of the saturated rate; p50 $(ms "$(g $b.mepaced.p50_ms)"), p99 $(ms "$p99"); non-2xx $(g $b.mepaced.non2xx)" ;;
    me64p99)
      if [ "$b" = pgredis ]; then echo "$(ms "$(g $b.me64.p99_ms)") ($(verdict "$(g $b.me64.p99_ms) < 5"))"; else ms "$(g $b.me64.p99_ms)"; fi ;;
    rss)
      echo "base $(mib "$(g $b.base_rss_kib)") MiB; peak before the flood $(mib "$(g $b.hwm_before_flood_kib)") MiB" ;;
    flood)
      echo "$(g $b.flood.requests) answers in $(g $b.flood.secs) s: $(g $b.flood.statuses); socket errors $(g $b.flood.sockerr), timeouts $(g $b.flood.timeouts)" ;;
    floodok)
      calc "$(g $b.flood.statuses | tr ',' '\n' | awk -F: '$1 == 200 { n = $2 } END { print n + 0 }') / $(g $b.flood.secs)" 1 | sed 's|$|/s|' ;;
    retry) echo "flood: $(g $b.flood.retry_after); probe: $(g $b.probe.retry_503)" ;;
    probe)
      echo "server (the 503 lines written in full): p50 $(ms "$(g $b.srv503.p50_ms)"), p99 $(ms "$(g $b.srv503.p99_ms)"), max $(ms "$(g $b.srv503.max_ms)") over $(g $b.srv503.n); probe (client): $(g $b.probe.n503) of $(g $b.probe.n) answered 503, p50 $(ms "$(g $b.probe.p50_503_ms)"), p99 $(ms "$(g $b.probe.p99_503_ms)"); $(g $b.probe.n200) admitted" ;;
    floodrss)
      local bound=$(( $(g $b.base_rss_kib) + PERMITS * M_KIB + 65536 ))
      echo "$(mib "$(g $b.hwm_kib)") MiB <= $(mib $bound) MiB? $(verdict "$(g $b.hwm_kib) <= $bound") (after: $(mib "$(g $b.rss_after_kib)") MiB)" ;;
    cpu)
      local ph max_other=0 max_phase=none txt="" repeated=0
      for ph in login1 login8 login64 health8 me8 health64 me64 mepaced; do
        (( $(g $b.$ph.tries) > 1 )) && repeated=$(( repeated + 1 ))
        if (( $(g $b.$ph.cpu_other) > max_other )); then
          max_other=$(g $b.$ph.cpu_other)
          max_phase=$ph
        fi
      done
      for ph in login8 me64; do
        txt+="$ph: server $(g $b.$ph.cpu_server)%, wrk $(g $b.$ph.cpu_wrk)%, PostgreSQL + Redis $(g $b.$ph.cpu_services)%; "
      done
      echo "${txt}anything else: at most ${max_other}% ($max_phase) ($(verdict "$max_other <= $DISTURBED_PCT")); phases repeated: $repeated" ;;
    after) echo "GET /users/me $(g $b.me_after); 5xx logged $(g $b.server_5xx_logged), of them 500: $(g $b.server_500)" ;;
    logs) echo "$(g $b.srv503.full) 5xx lines in full and $(g $b.srv503.summaries) summaries for $(g $b.server_5xx_logged) answers; the whole run's log $(g $b.srv503.lines) lines, $(calc "$(g $b.srv503.bytes) / 1048576" 1) MiB" ;;
  esac
}

declare -A NAMES=([memory]="in-process memory" [pgredis]="PostgreSQL + Redis")
row() { # label target row-key
  local line="| $1 |" b
  for b in "${BACKENDS[@]}"; do line+=" $(cell "$b" "$3") |"; done
  echo "$line $2 |"
}

model=$(lscpu | awk -F: '/^Model name/ { gsub(/^ +/, "", $2); print $2; exit }')
echo "Load test of $(date -u +%Y-%m-%d) on $model, $CPUS CPUs ($REV); wrk on the same CPUs; hashing $HASHING, $PERMITS permits, m=$M_KIB KiB; load average before $LOAD_BEFORE, after $LOAD_AFTER; ${LOAD_SECS} s per phase."
echo
header="| measure |"
sep="|---|"
for b in "${BACKENDS[@]}"; do header+=" ${NAMES[$b]} |"; sep+="---|"; done
echo "$header target |"
echo "$sep---|"
row "one login at concurrency 1 (mean)" "" single
row "the hasher alone (hash-rate before and after the login phases, no HTTP, no stores): verifies/s" "" hashrate
row "ideal logins/s = CPUs x one verify at a time (over HTTP: CPUs / one login)" "" ideal
row "logins/s, concurrency 8" ">= 90% of ideal" login8
row "logins/s, concurrency 64" ">= 90% of ideal" login64
row "GET /healthz, concurrency 8 (2 x $(( (LOAD_SECS + 1) / 2 )) s, A B B A with the next)" "" health8
row "GET /users/me, concurrency 8" "" me8
row "/users/me / /healthz req/s, concurrency 8" ">= 0.8 (memory)" ratio8
row "GET /healthz, concurrency 64" "" health64
row "GET /users/me, concurrency 64" "" me64
row "/users/me / /healthz req/s, concurrency 64" ">= 0.8 (memory), >= 0.6 (PostgreSQL + Redis)" ratio64
row "GET /users/me p99, concurrency 64 (saturated)" "" me64p99
row "GET /users/me, 64 connections paced to $(calc "100 * $PACED_SHARE" 0)% of that rate (mean wait per connection: pace below)" "" mepaced
row "RSS" "" rss
row "flood: $FLOOD_CONNECTIONS connections of logins, ${FLOOD_SECS} s" "excess answered 503" flood
row "flood: successful logins/s" "" floodok
row "flood: Retry-After of 503s (value:count)" "present" retry
row "flood: time to answer 503 (server log; a client probe every 50 ms)" "fast" probe
row "flood: GET /users/me, 4 connections, meanwhile" "keeps answering" meflood
row "flood: peak RSS (VmHWM) <= base + $PERMITS x $M_KIB KiB + 64 MiB" "within bound" floodrss
row "after the flood" "200; no 500" after
row "server log (S9: 5xx lines sampled)" "every 5xx counted, the log small" logs
row "share of the $CPUS CPUs used" "others <= $DISTURBED_PCT% (a quiet machine)" cpu
echo
echo "Run time: build ${BUILD_SECS} s, measurements ${MEASURE_SECS} s (bound ${LOAD_BUDGET_SECS} s)."
