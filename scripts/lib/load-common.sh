# Shared by scripts/load.sh and scripts/scale.sh (sourced, not run): logging
# and arithmetic helpers, the processes a run started and their cleanup, the
# time budget, the wrk script and its RESULT lines, one wrk phase with its CPU
# accounting, and the example server's start and first user.
#
# The sourcing script sets, before sourcing: LOG_TAG (prefix of progress lines),
# WORK (a fresh work directory, deleted on exit unless KEEP_LOGS=1), CPUS; and
# before measuring: MEASURE_START and LOAD_BUDGET_SECS (budget_check),
# DISTURBED_PCT (run_wrk), SERVER_BIN (start_server). A function
# cleanup_extra, when defined, runs first on exit.

log() { printf '[%s %4ds] %s\n' "${LOG_TAG:-load}" "$SECONDS" "$*" >&2; }
die() { log "error: $*"; exit 1; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", ($1) }"; }
# Milliseconds with 3 significant digits or so.
ms() { awk -v v="$1" 'BEGIN { if (v == "n/a" || v == "nan") print "n/a"; else if (v >= 100) printf "%.0f ms\n", v; else if (v >= 10) printf "%.1f ms\n", v; else if (v >= 1) printf "%.2f ms\n", v; else printf "%.3f ms\n", v }'; }
# Pass/fail word for an awk condition.
verdict() { if awk "BEGIN { exit !($1) }"; then echo pass; else echo FAIL; fi; }

# --- processes started here, ended on exit (by their own ids only) -----------

PIDS=()
cleanup() {
  local pid
  if declare -F cleanup_extra >/dev/null; then cleanup_extra || true; fi
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ "${KEEP_LOGS:-0}" = 1 ]; then log "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'log "stopped by a failed command at line $LINENO"' ERR
trap 'exit 130' INT TERM

budget_check() {
  (( SECONDS - MEASURE_START <= LOAD_BUDGET_SECS )) ||
    die "over the time budget of ${LOAD_BUDGET_SECS}s; stopping"
}

# wrk, curl and python3, from Debian's packages if missing.
need_tools() {
  if ! command -v wrk >/dev/null; then
    log "installing wrk from Debian's packages"
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
  fi
  command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }
  command -v python3 >/dev/null || die "python3 is needed"
}

# --- wrk ---------------------------------------------------------------------
# One script for every phase: method, body and headers come from the
# environment; WRK_COUNT=1 also counts statuses and Retry-After values (logins
# only: a Lua callback per response would slow wrk down on the GET phases). It
# prints one line: RESULT key=value ...
cat >"$WORK/wrk.lua" <<'LUA'
wrk.method = os.getenv("WRK_METHOD") or "GET"
local body = os.getenv("WRK_BODY")
if body and #body > 0 then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
local cookie = os.getenv("WRK_COOKIE")
if cookie and #cookie > 0 then wrk.headers["Cookie"] = cookie end
local origin = os.getenv("WRK_ORIGIN")
if origin and #origin > 0 then wrk.headers["Origin"] = origin end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("seed", #threads)
end

-- WRK_PACE_MS: every connection waits a random time (exponential, this mean)
-- after each answer before its next request, as a user would: the load is then
-- a chosen fraction of what the server can do, not all of it.
local pace = tonumber(os.getenv("WRK_PACE_MS") or "")
if pace and pace > 0 then
  function delay() return math.floor(-pace * math.log(1 - math.random()) + 0.5) end
end

-- A body per request (scale.sh): WRK_EMAILS=N sends {"email":"u<k>@WRK_DOMAIN"}
-- with k drawn at random in 1..N; WRK_TOKENS=<file> sends {"token":"<line>"},
-- each line of the file once (thread i of WRK_THREADS takes lines i, i + n,
-- ...), then a malformed token, counted as exhausted. WRK_XFF=1 adds
-- X-Forwarded-For 10.<thread>.<x>.<y>, a new client address per request, for a
-- server that trusts 127.0.0.1 as its proxy.
-- WRK_LOGINS=N sends {"email":"u<k>@WRK_DOMAIN","password":"WRK_PASSWORD"}:
-- thread i of WRK_THREADS cycles through its own accounts k = i, i + n, ...
-- up to N, so no account has more than one login in flight while N is at
-- least twice the connections (concurrent logins of one account are held to
-- its lockout threshold on purpose, S6, and would measure that instead).
local logins = tonumber(os.getenv("WRK_LOGINS") or "")
local password = os.getenv("WRK_PASSWORD") or ""
local emails = tonumber(os.getenv("WRK_EMAILS") or "")
local domain = os.getenv("WRK_DOMAIN") or "scale.example"
local token_file = os.getenv("WRK_TOKENS")
local xff = os.getenv("WRK_XFF") == "1"
function init(_)
  math.randomseed(os.time() * 100 + seed)
  if token_file and #token_file > 0 then
    tokens, next_token, exhausted = {}, 1, 0
    local n, i = tonumber(os.getenv("WRK_THREADS") or "1"), 0
    for line in io.lines(token_file) do
      if i % n == (seed - 1) % n then table.insert(tokens, line) end
      i = i + 1
    end
  end
end
if (emails and emails > 0) or (logins and logins > 0) or (token_file and #token_file > 0) or xff then
  local sent = 0
  function request()
    sent = sent + 1
    local b = wrk.body
    if logins and logins > 0 then
      local n = tonumber(os.getenv("WRK_THREADS") or "1")
      local per = math.max(1, math.floor(logins / n))
      local k = seed + n * ((sent - 1) % per)
      b = string.format('{"email":"u%d@%s","password":"%s"}', k, domain, password)
    end
    if emails and emails > 0 then
      b = string.format('{"email":"u%d@%s"}', math.random(emails), domain)
    end
    if tokens then
      local t = tokens[next_token]
      next_token = next_token + 1
      if not t then exhausted = exhausted + 1 end
      b = string.format('{"token":"%s"}', t or "exhausted")
    end
    if b then wrk.headers["Content-Type"] = "application/json" end
    if xff then
      wrk.headers["X-Forwarded-For"] =
        string.format("10.%d.%d.%d", seed % 256, math.floor(sent / 256) % 256, sent % 256)
    end
    return wrk.format(nil, nil, nil, b)
  end
end

if os.getenv("WRK_COUNT") == "1" then
  statuses = {}
  retry = {}
  function response(status, headers, _)
    local s = tostring(status)
    statuses[s] = (statuses[s] or 0) + 1
    if status == 503 or status == 429 then
      local ra = headers["retry-after"] or headers["Retry-After"] or "none"
      retry[ra] = (retry[ra] or 0) + 1
    end
  end
end

local function join(t)
  local out = {}
  for k, v in pairs(t) do table.insert(out, k .. ":" .. v) end
  table.sort(out)
  if #out == 0 then return "-" end
  return table.concat(out, ",")
end

function done(summary, latency, _)
  local secs = summary.duration / 1e6
  local e = summary.errors
  local st, ra, ex = {}, {}, 0
  for _, t in ipairs(threads) do
    ex = ex + (t:get("exhausted") or 0)
    local s = t:get("statuses")
    if s then for k, v in pairs(s) do st[k] = (st[k] or 0) + v end end
    local r = t:get("retry")
    if r then for k, v in pairs(r) do ra[k] = (ra[k] or 0) + v end end
  end
  io.write(string.format(
    "RESULT requests=%d secs=%.3f rps=%.1f mean_ms=%.3f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f " ..
    "non2xx=%d sockerr=%d timeouts=%d statuses=%s retry_after=%s exhausted=%d\n",
    summary.requests, secs, summary.requests / secs, latency.mean / 1000,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect + e.read + e.write, e.timeout, join(st), join(ra), ex))
end
LUA

declare -A R # results: R[backend.phase.key]

# Stores a RESULT/PROBE line of file $2 under prefix $1.
parse_result() {
  local prefix=$1 file=$2 kv
  local line
  line=$(grep -E '^(RESULT|PROBE) ' "$file" | tail -1) || die "no result in $file: $(tail -5 "$file")"
  for kv in ${line#* }; do R["$prefix.${kv%%=*}"]=${kv#*=}; done
}

# run_wrk PREFIX CONNECTIONS SECS PATH [VAR=VALUE ...]: runs wrk in the foreground
# and accounts for the CPU time of the phase. When processes other than the
# server, wrk, PostgreSQL and Redis took more than DISTURBED_PCT% of the machine
# (a neighbour's build), it waits for a quiet minute and repeats the phase, twice
# at most (not with REPEAT=0); the table shows what the last try saw.
run_wrk() {
  local prefix=$1 conns=$2 secs=$3 path=$4
  shift 4
  local threads=$(( conns < CPUS ? conns : CPUS )) try
  for try in 1 2 3; do
    budget_check
    log "wrk $prefix: $conns connections, ${secs}s, $path$( (( try > 1 )) && echo " (try $try)")"
    local busy0 server0 wrk0 svc0
    busy0=$(cpu_busy); server0=$(proc_cpu "$SERVER_PID"); wrk0=$(children_cpu); svc0=$(services_cpu)
    env WRK_THREADS="$threads" "$@" timeout $(( secs + 30 )) wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout 10s \
      -s "$WORK/wrk.lua" "$BASE$path" >"$WORK/$prefix.txt" 2>&1 || die "wrk $prefix failed: $(tail -5 "$WORK/$prefix.txt")"
    local busy=$(( $(cpu_busy) - busy0 )) server=$(( $(proc_cpu "$SERVER_PID") - server0 ))
    local wrk=$(( $(children_cpu) - wrk0 )) svc=$(( $(services_cpu) - svc0 ))
    local whole=$(( secs * CLK_TCK * CPUS ))
    R[$prefix.cpu_server]=$(( 100 * server / whole ))
    R[$prefix.cpu_wrk]=$(( 100 * wrk / whole ))
    R[$prefix.cpu_services]=$(( 100 * svc / whole ))
    # On the memory store, PostgreSQL and Redis work for somebody else.
    [ "${CUR_BACKEND:-}" = memory ] && svc=0
    R[$prefix.cpu_other]=$(( 100 * (busy - server - wrk - svc) / whole ))
    R[$prefix.tries]=$try
    parse_result "$prefix" "$WORK/$prefix.txt"
    (( ${REPEAT:-1} == 0 || R[$prefix.cpu_other] <= DISTURBED_PCT )) && break
    log "other processes took ${R[$prefix.cpu_other]}% of the CPUs during $prefix; waiting for quiet, then repeating"
    wait_quiet 60
  done
}

# Waits until the machine is below 10% busy over 2 s, at most $1 seconds.
wait_quiet() {
  local until=$(( SECONDS + $1 )) b0 b1 t0 t1
  while (( SECONDS < until )); do
    b0=$(cpu_busy); t0=$(awk '$1 == "cpu" { s = 0; for (i = 2; i <= NF; i++) s += $i; print s; exit }' /proc/stat)
    sleep 2
    b1=$(cpu_busy); t1=$(awk '$1 == "cpu" { s = 0; for (i = 2; i <= NF; i++) s += $i; print s; exit }' /proc/stat)
    (( t1 > t0 && 100 * (b1 - b0) / (t1 - t0) < 10 )) && return 0
  done
  return 0
}

# CPU accounting in clock ticks, to tell whether something else ran meanwhile:
# the machine's user and system time (interrupt and softirq time, which loopback
# traffic causes and no process is charged with, left out), the server's, wrk's
# (reaped children of this shell), and PostgreSQL's and Redis's (processes named
# postgres or redis-server).
CLK_TCK=$(getconf CLK_TCK)
cpu_busy() { awk '$1 == "cpu" { print $2 + $3 + $4; exit }' /proc/stat; }
proc_cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
children_cpu() { awk '{ print $16 + $17 }' "/proc/$$/stat"; }
services_cpu() {
  local pid total=0
  for pid in $(pgrep -x postgres) $(pgrep -x redis-server); do
    total=$(( total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0) ))
  done
  echo "$total"
}

# merge_halves PREFIX: PREFIX from PREFIX.a and PREFIX.b: requests and time
# added up, the mean of the two p50s, the larger p99, the worse CPU figures.
merge_halves() {
  local p=$1 k
  R[$p.requests]=$(( R[$p.a.requests] + R[$p.b.requests] ))
  R[$p.secs]=$(calc "${R[$p.a.secs]} + ${R[$p.b.secs]}" 3)
  R[$p.rps]=$(calc "${R[$p.requests]} / ${R[$p.secs]}" 1)
  R[$p.p50_ms]=$(calc "(${R[$p.a.p50_ms]} + ${R[$p.b.p50_ms]}) / 2" 3)
  R[$p.p99_ms]=$(calc "${R[$p.a.p99_ms]} > ${R[$p.b.p99_ms]} ? ${R[$p.a.p99_ms]} : ${R[$p.b.p99_ms]}" 3)
  R[$p.non2xx]=$(( R[$p.a.non2xx] + R[$p.b.non2xx] ))
  for k in cpu_server cpu_wrk cpu_services; do
    R[$p.$k]=$(( (R[$p.a.$k] + R[$p.b.$k]) / 2 ))
  done
  R[$p.cpu_other]=$(( R[$p.a.cpu_other] > R[$p.b.cpu_other] ? R[$p.a.cpu_other] : R[$p.b.cpu_other] ))
  R[$p.tries]=$(( R[$p.a.tries] > R[$p.b.tries] ? R[$p.a.tries] : R[$p.b.tries] ))
}

rss_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# --- the example server --------------------------------------------------------
# start_server NAME [VAR=VALUE ...] [-- ARG ...]: starts SERVER_BIN on a free
# port of 127.0.0.1 with only the given variables of the server's own (the
# caller's DATABASE_URL, REDIS_URL and the like are unset first), waits until it
# says where it listens, and sets SERVER_PID, SERVER_OUT, SERVER_ERR, ADDR,
# BASE and ORIGIN (PUBLIC_URL's default origin).
start_server() {
  local name=$1
  shift
  local -a envs=(BIND_ADDR=127.0.0.1:0) args=()
  while (( $# )); do
    if [ "$1" = -- ]; then shift; args=("$@"); break; fi
    envs+=("$1")
    shift
  done
  local -a unset=(-u DATABASE_URL -u DATABASE_SCHEMA -u REDIS_URL -u REDIS_KEY_PREFIX -u PUBLIC_URL
    -u BIND_ADDR -u TRUSTED_PROXIES -u SMTP_URL -u CLEANUP_INTERVAL_SECS)
  SERVER_OUT="$WORK/$name.out"
  SERVER_ERR="$WORK/$name.err"
  budget_check
  log "[$name] starting the server"
  env "${unset[@]}" "${envs[@]}" "$SERVER_BIN" "${args[@]}" >"$SERVER_OUT" 2>"$SERVER_ERR" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  ADDR=""
  for _ in $(seq 300); do
    ADDR=$(grep -oE 'listening on http://[0-9.]+:[0-9]+' "$SERVER_OUT" 2>/dev/null | head -1 | sed 's|.*http://||') || true
    [ -n "$ADDR" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || die "[$name] the server stopped: $(tail -5 "$SERVER_ERR")"
    sleep 0.1
  done
  [ -n "$ADDR" ] || die "[$name] the server did not say where it listens"
  BASE="http://$ADDR"
  ORIGIN="http://localhost:${ADDR##*:}"
  sleep 0.5
}

# stop_server: SIGTERM to the current server, and waits for it.
stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

# register_verified NAME EMAIL PASSWORD [ADDRESS]: registers a user on the
# current server and verifies the address with the token the console mailer
# prints; with ADDRESS, both requests come from it through X-Forwarded-For (a
# server that trusts 127.0.0.1 as its proxy), so registering many accounts
# stays under the per-IP request limit.
register_verified() {
  local name=$1 email=$2 password=$3 code token=""
  local -a from=()
  if [ -n "${4:-}" ]; then from=(-H "X-Forwarded-For: $4"); fi
  code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST "$BASE/api/v1/auth/register" \
    -H 'Content-Type: application/json' -H "Origin: $ORIGIN" "${from[@]}" \
    -d "{\"email\":\"$email\",\"password\":\"$password\"}")
  [ "$code" = 202 ] || die "[$name] register answered $code"
  for _ in $(seq 100); do
    token=$(grep -A8 "^To: $email" "$SERVER_OUT" | grep -oE 'verify-email\?token=[A-Za-z0-9_-]+' | head -1 | cut -d= -f2) || true
    [ -n "$token" ] && break
    sleep 0.1
  done
  [ -n "$token" ] || die "[$name] no verification email in the server's output"
  code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST "$BASE/api/v1/auth/verify-email" \
    -H 'Content-Type: application/json' -H "Origin: $ORIGIN" "${from[@]}" -d "{\"token\":\"$token\"}")
  [ "$code" = 200 ] || die "[$name] verify-email answered $code"
}

# login_cookie NAME EMAIL PASSWORD: logs in on the current server and sets
# COOKIE (name=value of the session cookie), checked with GET /users/me. A 429
# or 503 (the account's limit right after a phase of concurrent logins) is
# retried once a second, 20 times at most.
login_cookie() {
  local name=$1 email=$2 password=$3 code try
  for try in $(seq 20); do
    code=$(curl -s -m 10 -D "$WORK/$name.login.h" -o /dev/null -w '%{http_code}' -X POST \
      "$BASE/api/v1/auth/login" -H 'Content-Type: application/json' -H "Origin: $ORIGIN" \
      -d "{\"email\":\"$email\",\"password\":\"$password\"}")
    [ "$code" = 429 ] || [ "$code" = 503 ] || break
    log "[$name] login answered $code (try $try); retrying in 1 s"
    sleep 1
  done
  [ "$code" = 200 ] || die "[$name] login answered $code"
  COOKIE=$(grep -i '^set-cookie:' "$WORK/$name.login.h" | head -1 | sed -E 's/^[^:]*: *([^;]*).*/\1/' | tr -d '\r')
  code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE" "$BASE/api/v1/users/me")
  [ "$code" = 200 ] || die "[$name] GET /users/me answered $code"
}
