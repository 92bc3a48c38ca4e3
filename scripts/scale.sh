#!/usr/bin/env bash
# Data-scale test of the example server (issue 18). Manual: .ci/run only checks
# its syntax.
#
# Creates two PostgreSQL databases of its own (dropped at the end, and dropped
# and made afresh at the start if a previous run left them): LOADED
# (DATABASE_URL) gets SCALE_USERS users with argon2id password credentials,
# SCALE_SESSIONS sessions (SCALE_EXPIRED_PCT% past their deadlines, a tenth of
# those also revoked) and SCALE_AUDIT audit events, with INSERT ... SELECT
# generate_series (the load time per table is reported); EMPTY
# (EMPTY_DATABASE_URL) holds only the measured user. The tables come from the
# example server's own migrations (`example-server migrate up`), in the schema
# DATABASE_SCHEMA (default auth) when the migrations put them there, else in
# public (the layout before that schema setting), and the rows are written to
# whichever holds them. The one password hash is the PHC string the server made
# when the measured user registered on EMPTY; every loaded user shares it.
#
# Then, against the release example server on each database (both servers up
# at once, phases in the order EMPTY LOADED LOADED EMPTY, LOAD_SECS / 2 each, so
# drift weighs on both alike), with wrk:
#   - login (POST /api/v1/auth/login), concurrency 8, over the accounts
#     u1 .. u64 (each wrk thread cycles through its own);
#   - GET /api/v1/users/me with the measured user's session, concurrency 64;
#   - reset request (POST /api/v1/auth/password/forgot), concurrency 8, each
#     request for a random u<k>@scale.example, k <= SCALE_RESET_USERS, known on
#     both databases (EMPTY gets those users too: a reset of a known account
#     issues a token and a mail, an unknown one does not, so only known ones
#     compare) from a new client address: the server trusts 127.0.0.1 as its proxy
#     (TRUSTED_PROXIES) and wrk sends X-Forwarded-For, so the per-IP limit does
#     not refuse the load. The request is answered before its work (lookup,
#     token, mail) runs in the background, whose full queue answers 503, so
#     the figure is the resets carried out (reset tokens issued) per second of
#     the phase and of the wait, after each half, until the background is done;
#   - token consumption (POST /api/v1/auth/verify-email), concurrency 8, with
#     fresh email-verification tokens of the measured user inserted beforehand:
#     the script knows SECRET_KEY, so it computes their keyed hashes as
#     auth-core does (HMAC-SHA256 over purpose, a zero byte and the token).
# Sessions live in Redis when REDIS_URL is set (the table says which store).
#
# Then purge_expired under load, on LOADED with sessions in PostgreSQL (where the
# expired rows are; also when REDIS_URL is set): GET /users/me at concurrency 64
# in PURGE_CHUNK_SECS windows on a server that does not purge, then on one whose
# timer (CLEANUP_INTERVAL_SECS) starts a purge two seconds after start, until it
# logs the purge's end (PURGE_MAX_SECS at most): req/s and the worst window's p99
# of each.
#
# With REDIS_URL, finally: one login each of SCALE_REDIS_SESSIONS loaded users
# (they share the password), then MEMORY USAGE of every key under that server's
# REDIS_KEY_PREFIX, per live session.
#
# Prints one markdown report on stdout; progress goes to stderr. Traffic goes to
# 127.0.0.1 only (and to the given PostgreSQL and Redis); every phase, the load
# included, is bounded in time; the work directory and the run's Redis keys are
# deleted at the end, and the databases too unless SCALE_KEEP_DB=1.
#
#   SCALE_USERS=20000 SCALE_SESSIONS=100000 SCALE_AUDIT=200000 LOAD_SECS=4 \
#     scripts/scale.sh                            # smoke run, a few minutes after the build
#   REDIS_URL=redis://127.0.0.1:6379 scripts/scale.sh   # full scale
#
# Knobs (environment): DATABASE_URL (postgres://postgres@127.0.0.1:5432/auth_scale),
# EMPTY_DATABASE_URL (the same server, database <name>_empty), DATABASE_SCHEMA
# (auth), REDIS_URL (unset: sessions in PostgreSQL, no memory figure),
# SCALE_USERS (1000000), SCALE_SESSIONS (5000000), SCALE_EXPIRED_PCT (90),
# SCALE_AUDIT (10000000), SCALE_RESET_USERS (20000: the accounts the reset
# phase picks from, on both databases), SCALE_TOKENS (40000 per database, half per half
# phase), SCALE_REDIS_SESSIONS (1000), LOAD_SECS (10), PURGE_CHUNK_SECS (5),
# PURGE_MAX_SECS (300), LOAD_BUDGET_SECS (3600: bound of everything after the
# build), DISTURBED_PCT (5: a phase during which other processes took more of
# the CPUs is repeated, twice at most, as in load.sh), HASH_CONCURRENCY
# (default: CPUs), SKIP_BUILD=1, KEEP_LOGS=1, SCALE_KEEP_DB=1, AUTH_REV.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/auth_scale}
EMPTY_DATABASE_URL=${EMPTY_DATABASE_URL:-${DATABASE_URL%%\?*}_empty}
SCHEMA_WANTED=${DATABASE_SCHEMA:-auth}
SCALE_USERS=${SCALE_USERS:-1000000}
SCALE_SESSIONS=${SCALE_SESSIONS:-5000000}
SCALE_EXPIRED_PCT=${SCALE_EXPIRED_PCT:-90}
SCALE_AUDIT=${SCALE_AUDIT:-10000000}
SCALE_TOKENS=${SCALE_TOKENS:-40000}
SCALE_RESET_USERS=${SCALE_RESET_USERS:-20000}
SCALE_REDIS_SESSIONS=${SCALE_REDIS_SESSIONS:-1000}
LOAD_SECS=${LOAD_SECS:-10}
PURGE_CHUNK_SECS=${PURGE_CHUNK_SECS:-5}
PURGE_MAX_SECS=${PURGE_MAX_SECS:-300}
LOAD_BUDGET_SECS=${LOAD_BUDGET_SECS:-3600}
DISTURBED_PCT=${DISTURBED_PCT:-5}
CPUS=$(nproc)
PERMITS=${HASH_CONCURRENCY:-$CPUS}
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
RUN_ID="$(date +%s)-$$"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/auth-scale.XXXXXX")
PASSWORD='correct horse battery staple, scale'
SECRET_KEY_VALUE=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
REDIS_PREFIX="scale-$RUN_ID"
MARK='auth scale.sh database' # COMMENT ON DATABASE: what this script may drop

LOG_TAG=scale
# shellcheck source=scripts/lib/load-common.sh
. scripts/lib/load-common.sh

need_tools
command -v psql >/dev/null || die "psql is needed (postgresql-client)"
if [ -n "${REDIS_URL:-}" ]; then command -v redis-cli >/dev/null || die "redis-cli is needed"; fi
(( SCALE_USERS >= 2 && SCALE_SESSIONS >= 1 && SCALE_AUDIT >= 1 )) || die "SCALE_* too small"
(( SCALE_EXPIRED_PCT >= 0 && SCALE_EXPIRED_PCT < 100 )) || die "SCALE_EXPIRED_PCT must be 0..99"

# The run's Redis keys go with it (only under this run's prefix).
cleanup_extra() {
  [ -n "${REDIS_URL:-}" ] || return 0
  redis-cli -u "$REDIS_URL" --scan --pattern "$REDIS_PREFIX*" 2>/dev/null |
    xargs -r -n 500 redis-cli -u "$REDIS_URL" DEL >/dev/null 2>&1 || true
}

# --- databases -------------------------------------------------------------------
db_name() { local u=${1%%\?*}; echo "${u##*/}"; }
admin_url() { local u=${1%%\?*}; echo "${u%/*}/postgres"; }
LOADED_DB=$(db_name "$DATABASE_URL")
EMPTY_DB=$(db_name "$EMPTY_DATABASE_URL")
for d in "$LOADED_DB" "$EMPTY_DB"; do
  [[ $d =~ ^[a-z_][a-z0-9_]*$ ]] || die "database name $d: use a-z, 0-9 and _"
  case $d in test | postgres | template0 | template1) die "refusing to use the database $d: give this script one of its own" ;; esac
done
[ "$LOADED_DB" != "$EMPTY_DB" ] || die "DATABASE_URL and EMPTY_DATABASE_URL name the same database"
[[ $SCHEMA_WANTED =~ ^[a-z_][a-z0-9_]*$ ]] || die "DATABASE_SCHEMA $SCHEMA_WANTED: use a-z, 0-9 and _"

# q URL SQL...: one psql call, unaligned, errors fatal.
q() { local url=$1; shift; psql "$url" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# fresh_db URL: drops the database if this script made it, creates it and marks it.
fresh_db() {
  local url=$1 name admin mark
  name=$(db_name "$url")
  admin=$(admin_url "$url")
  mark=$(q "$admin" -c "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '$name'")
  if [ "$(q "$admin" -c "SELECT count(*) FROM pg_database WHERE datname = '$name'")" = 1 ]; then
    [ "$mark" = "$MARK" ] || die "the database $name exists and is not one this script made; choose another DATABASE_URL"
    log "dropping $name (left by an earlier run)"
    q "$admin" -c "DROP DATABASE \"$name\" WITH (FORCE)"
  fi
  q "$admin" -c "CREATE DATABASE \"$name\"" -c "COMMENT ON DATABASE \"$name\" IS '$MARK'"
}

drop_db() {
  local name
  name=$(db_name "$1")
  q "$(admin_url "$1")" -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" || log "could not drop $name"
}

# migrate URL: the server's migrations; prints the schema that holds the tables.
migrate() {
  local url=$1 out="$WORK/migrate-$(db_name "$1").txt"
  env -u REDIS_URL DATABASE_URL="$url" DATABASE_SCHEMA="$SCHEMA_WANTED" \
    timeout 120 "$SERVER_BIN" migrate up >"$out" 2>&1 || die "migrate up failed: $(tail -5 "$out")"
  local s
  s=$(q "$url" -c "SELECT CASE WHEN to_regclass('\"$SCHEMA_WANTED\".users') IS NOT NULL THEN '$SCHEMA_WANTED'
                               WHEN to_regclass('public.users') IS NOT NULL THEN 'public' END")
  [ -n "$s" ] || die "after migrate up, no users table in $SCHEMA_WANTED or public of $(db_name "$url")"
  [ "$(q "$url" -c "SELECT to_regclass('\"$s\".password_credentials') IS NOT NULL")" = t ] ||
    die "no password_credentials table: the migrations predate 20261211000000_credentials"
  echo "$s"
}

# --- build -------------------------------------------------------------------------
BUILD_START=$SECONDS
FEATURES=postgres
[ -n "${REDIS_URL:-}" ] && FEATURES=postgres,redis
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "building: cargo build --release -p example-server --features $FEATURES"
  cargo build --release --quiet -p example-server --features "$FEATURES" >&2
fi
SERVER_BIN="$TARGET_DIR/release/example-server"
[ -x "$SERVER_BIN" ] || die "no server binary at $SERVER_BIN"
BUILD_SECS=$(( SECONDS - BUILD_START ))
MEASURE_START=$SECONDS
remaining() { echo $(( LOAD_BUDGET_SECS - (SECONDS - MEASURE_START) )); }

log "databases: $LOADED_DB (loaded) and $EMPTY_DB (empty)"
fresh_db "$DATABASE_URL"
fresh_db "$EMPTY_DATABASE_URL"
S=$(migrate "$DATABASE_URL")
S_EMPTY=$(migrate "$EMPTY_DATABASE_URL")
[ "$S" = "$S_EMPTY" ] || die "the two databases got their tables in different schemas ($S, $S_EMPTY)"
log "the library's tables are in the schema $S"

# --- servers -----------------------------------------------------------------------
declare -A SRV_PID SRV_BASE SRV_ORIGIN SRV_ERR SRV_OUT
# server KEY URL [VAR=VALUE ...]: starts a server on database URL under KEY.
server() {
  local key=$1 url=$2
  shift 2
  start_server "$key" SECRET_KEY="$SECRET_KEY_VALUE" LOG_FORMAT=json HASH_CONCURRENCY="$PERMITS" \
    DATABASE_URL="$url" DATABASE_SCHEMA="$SCHEMA_WANTED" TRUSTED_PROXIES=127.0.0.1 "$@"
  SRV_PID[$key]=$SERVER_PID SRV_BASE[$key]=$BASE SRV_ORIGIN[$key]=$ORIGIN
  SRV_ERR[$key]=$SERVER_ERR SRV_OUT[$key]=$SERVER_OUT
}
use() { # KEY: the server that run_wrk, login_cookie and friends talk to
  SERVER_PID=${SRV_PID[$1]} BASE=${SRV_BASE[$1]} ORIGIN=${SRV_ORIGIN[$1]}
  SERVER_ERR=${SRV_ERR[$1]} SERVER_OUT=${SRV_OUT[$1]}
}
down() { use "$1"; stop_server; }

REDIS_ENV=()
SESSION_STORE=PostgreSQL
if [ -n "${REDIS_URL:-}" ]; then
  REDIS_ENV=(REDIS_URL="$REDIS_URL" REDIS_KEY_PREFIX="$REDIS_PREFIX")
  SESSION_STORE=Redis
fi
NO_PURGE=CLEANUP_INTERVAL_SECS=$(( LOAD_BUDGET_SECS + 3600 ))

MID=$(( (SCALE_USERS + 1) / 2 ))
EMAIL="u$MID@scale.example"

# The measured user on EMPTY, through the server: its PHC string is the hash
# every loaded user gets.
server e "$EMPTY_DATABASE_URL" "$NO_PURGE" "${REDIS_ENV[@]}"
register_verified e "$EMAIL" "$PASSWORD"
PHC=$(q "$EMPTY_DATABASE_URL" -c "SELECT p.hash FROM \"$S\".password_credentials p JOIN \"$S\".users u ON u.id = p.user_id WHERE u.email_normalized = '$EMAIL'")
[[ $PHC == '$argon2id$'* ]] || die "no argon2id hash for $EMAIL on $EMPTY_DB"

# The login phase's accounts u1 .. uLOGIN_USERS (each wrk thread cycles
# through its own, so no account has two logins in flight: concurrent logins
# of one account are held to its lockout threshold on purpose, S6). The loaded
# database has them among its users; the empty one gets them here, with the
# same hash, so both measure the same logins; likewise the reset phase's
# accounts u1 .. uRESET_USERS (EMPTY is then "20,000 users", not none).
LOGIN_USERS=$(( SCALE_USERS < 64 ? SCALE_USERS : 64 ))
RESET_USERS=$(( SCALE_USERS < SCALE_RESET_USERS ? SCALE_USERS : SCALE_RESET_USERS ))
EMPTY_USERS=$(( RESET_USERS > LOGIN_USERS ? RESET_USERS : LOGIN_USERS ))
PGOPTIONS="-c search_path=$S" psql "$EMPTY_DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -v phc="$PHC" >/dev/null <<SQL ||
INSERT INTO users (id, email, email_normalized, email_verified_at, created_at, updated_at)
SELECT gen_random_uuid(), 'u' || i || '@scale.example', 'u' || i || '@scale.example', now(), now(), now()
FROM generate_series(1, $EMPTY_USERS) AS i WHERE i <> $MID;
INSERT INTO password_credentials (user_id, hash, changed_at)
SELECT id, :'phc', now() FROM users WHERE email_normalized LIKE 'u%@scale.example' AND email_normalized <> '$EMAIL';
SQL
  die "adding the login users to $(db_name "$EMPTY_DATABASE_URL") failed"

# --- the load ----------------------------------------------------------------------
declare -A LOADT # seconds per table
# load_sql NAME SQL: one statement, bounded by what is left of the budget.
load_sql() {
  local name=$1 sql=$2 t0=$EPOCHREALTIME left
  left=$(remaining)
  (( left > 10 )) || die "no time left in the budget for loading $name"
  log "loading $name"
  PGOPTIONS="-c statement_timeout=${left}s -c synchronous_commit=off -c search_path=$S" \
    timeout "$left" psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -v phc="$PHC" -f - <<<"$sql" >"$WORK/load-$name.txt" 2>&1 ||
    die "loading $name failed: $(tail -5 "$WORK/load-$name.txt")"
  LOADT[$name]=$(calc "$EPOCHREALTIME - $t0" 1)
}
# A user's id from its number: the same expression everywhere (md5 of a label
# read as a uuid: unique, random-looking, no join needed).
uid() { echo "md5('scale-user-' || ($1))::uuid"; }
LOAD_START=$EPOCHREALTIME
load_sql users "
INSERT INTO users (id, email, email_normalized, email_verified_at, created_at, updated_at)
SELECT $(uid i), 'u' || i || '@scale.example', 'u' || i || '@scale.example',
       c + interval '10 minutes', c, c + interval '10 minutes'
FROM (SELECT i, now() - interval '365 days' * ((i * 7919) % 1000003) / 1000003.0 AS c
      FROM generate_series(1::bigint, $SCALE_USERS) AS i) AS g"
# psql's :'phc' variable quotes the PHC string (it holds '$' and ',').
load_sql password_credentials "
INSERT INTO password_credentials (user_id, hash, changed_at)
SELECT id, :'phc', created_at FROM users"
load_sql sessions "
INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, idle_expires_at,
                      absolute_expires_at, revoked_at, ip, user_agent, authenticated_at, methods)
SELECT gen_random_uuid(), sha256(int8send(j)), $(uid "1 + (j * 7919) % $SCALE_USERS"),
       c, s, s + interval '30 minutes', c + interval '24 hours',
       CASE WHEN dead AND j % 10 = 0 THEN s END,
       '10.0.0.0'::inet + (j % 16777216),
       (ARRAY['Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0',
              'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15',
              'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0 Safari/537.36',
              'okhttp/4.12.0'])[1 + j % 4],
       c, '{password}'
FROM (SELECT j, dead,
             -- live: signed in within the last 20 minutes, seen at sign-in;
             -- dead: signed in 2 to 30 days ago, last seen within its first hour
             CASE WHEN dead THEN now() - interval '2 days' - interval '1 second' * ((j * 104729) % 2419200)
                  ELSE now() - interval '1 second' * (j % 1200) END AS c,
             CASE WHEN dead THEN interval '1 second' * (j % 3600) ELSE interval '0' END AS seen
      FROM (SELECT j, (j % 100) < $SCALE_EXPIRED_PCT AS dead
            FROM generate_series(1::bigint, $SCALE_SESSIONS) AS j) AS a) AS b,
     LATERAL (SELECT c + seen AS s) AS l"
load_sql audit_log "
INSERT INTO audit_log (user_id, event, email, ip, user_agent, request_id, details, created_at)
SELECT CASE WHEN unknown THEN NULL ELSE $(uid "1 + (k * 31) % $SCALE_USERS") END,
       ev, CASE WHEN ev IN ('login_failed', 'password_reset_requested') THEN 'u' || (1 + (k * 31) % $SCALE_USERS) || '@scale.example' END,
       '10.0.0.0'::inet + (k % 16777216), 'Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0',
       md5(k::text),
       CASE WHEN unknown THEN '{\"detail\": \"unknown_account\"}'::jsonb ELSE '{}'::jsonb END,
       now() - interval '1 second' * ((k * 104729) % 31536000)
FROM (SELECT k, k % 20 = 0 AS unknown,
             CASE WHEN k % 20 = 0 THEN 'password_reset_requested'
                  ELSE (ARRAY['login_succeeded', 'login_succeeded', 'login_succeeded', 'login_succeeded',
                              'login_succeeded', 'login_failed', 'logout', 'password_reset_requested',
                              'email_verified', 'registered'])[1 + k % 10] END AS ev
      FROM generate_series(1::bigint, $SCALE_AUDIT) AS k) AS g"
LOAD_SECS_TOTAL=$(calc "$EPOCHREALTIME - $LOAD_START" 1)
load_sql vacuum_analyze "VACUUM (ANALYZE)"
q "$EMPTY_DATABASE_URL" -c "VACUUM (ANALYZE)"
LOADED_SIZE=$(q "$DATABASE_URL" -c "SELECT pg_size_pretty(pg_database_size(current_database()))")
EXPIRED_BEFORE=$(q "$DATABASE_URL" -c "SELECT count(*) FROM \"$S\".sessions WHERE idle_expires_at <= now() OR absolute_expires_at <= now() OR revoked_at <= now()")
log "loaded in ${LOAD_SECS_TOTAL}s (+ ${LOADT[vacuum_analyze]}s VACUUM ANALYZE); $LOADED_SIZE; $EXPIRED_BEFORE expired sessions"

# --- fresh tokens ------------------------------------------------------------------
# tokens KEY URL: SCALE_TOKENS email-verification tokens of the measured user,
# inserted with their keyed hashes; the token texts go to two files, one per
# half phase ($WORK/KEY.tokens.a and .b).
tokens() {
  local key=$1 url=$2 user
  user=$(q "$url" -c "SELECT id FROM \"$S\".users WHERE email_normalized = '$EMAIL'")
  [ -n "$user" ] || die "no user $EMAIL in $(db_name "$url")"
  SECRET_KEY="$SECRET_KEY_VALUE" python3 - "$SCALE_TOKENS" "$user" "$WORK/$key.tokens" >"$WORK/$key.tokens.copy" <<'PY'
# The keyed hash of auth-core's token.rs: HMAC-SHA256(SECRET_KEY's bytes,
# purpose || 0 || the token's 32 bytes); the token's text is unpadded base64url.
import base64, hashlib, hmac, os, sys
n, user, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
key = os.environ["SECRET_KEY"].encode()
texts = []
for _ in range(n):
    raw = os.urandom(32)
    texts.append(base64.urlsafe_b64encode(raw).rstrip(b"=").decode())
    h = hmac.new(key, b"email_verification\0" + raw, hashlib.sha256).hexdigest()
    sys.stdout.write("\\\\x%s\temail_verification\t%s\n" % (h, user))
half = (n + 1) // 2
for suffix, part in (("a", texts[:half]), ("b", texts[half:])):
    with open(out + "." + suffix, "w") as f:
        f.write("\n".join(part) + "\n")
PY
  q "$url" -c "CREATE TEMP TABLE t (token_hash bytea, purpose text, user_id uuid)" \
    -c "\\copy t FROM '$WORK/$key.tokens.copy'" \
    -c "INSERT INTO \"$S\".one_time_tokens (token_hash, purpose, user_id, created_at, expires_at)
        SELECT token_hash, purpose, user_id, now(), now() + interval '1 day' FROM t" \
    -c "ANALYZE \"$S\".one_time_tokens"
}
tokens e "$EMPTY_DATABASE_URL"
tokens l "$DATABASE_URL"

# --- measurements --------------------------------------------------------------------
server l "$DATABASE_URL" "$NO_PURGE" "${REDIS_ENV[@]}"

HALF=$(( (LOAD_SECS + 1) / 2 ))
THREADS8=$(( 8 < CPUS ? 8 : CPUS ))
# reset_tokens KEY: the password-reset tokens issued so far on KEY's database.
reset_tokens() {
  local url=$DATABASE_URL
  [ "$1" = e ] && url=$EMPTY_DATABASE_URL
  q "$url" -c "SELECT count(*) FROM \"$S\".one_time_tokens WHERE purpose = 'password_reset'"
}
# drained PREFIX KEY BEFORE: waits (60 s at most) until the server's background
# work is done (no new reset token for a second), and sets PREFIX.done (the
# resets carried out since BEFORE tokens) and PREFIX.drain (seconds waited).
# A reset request is answered before its work runs (S3), and a full queue
# answers 503 (S13), so the 2xx rate measures the queue; the resets carried
# out per second, drain included, measure the server.
drained() {
  local prefix=$1 key=$2 before=$3 t0=$EPOCHREALTIME last now same=0
  last=$(reset_tokens "$key")
  while (( same < 4 )); do
    sleep 0.25
    now=$(reset_tokens "$key")
    if [ "$now" = "$last" ]; then same=$(( same + 1 )); else same=0; last=$now; fi
    awk "BEGIN { exit !($EPOCHREALTIME - $t0 > 60) }" && { log "$prefix: still draining after 60 s"; break; }
  done
  # The last second waited for nothing.
  R[$prefix.drain]=$(calc "$EPOCHREALTIME - $t0 - 1" 2)
  awk "BEGIN { exit !(${R[$prefix.drain]} < 0) }" && R[$prefix.drain]=0
  R[$prefix.done]=$(( last - before ))
}

# op NAME CONNECTIONS PATH [VAR=VALUE ...]: the phase on e, l, l, e; results
# under e.NAME and l.NAME (2xx answers per second in ok_per_s).
op() {
  local name=$1 conns=$2 path=$3
  shift 3
  local k half
  for k in e.a l.a l.b e.b; do
    use "${k%.*}"
    half=${k#*.}
    local -a extra=()
    [ "$name" = me ] && extra=(WRK_COOKIE="${CK[${k%.*}]}")
    [ "$name" = consume ] && extra=(WRK_TOKENS="$WORK/${k%.*}.tokens.$half" WRK_THREADS="$THREADS8")
    [ "$name" = forgot ] && local issued=$(reset_tokens "${k%.*}")
    run_wrk "${k%.*}.$name.$half" "$conns" "$HALF" "$path" WRK_ORIGIN="$ORIGIN" "$@" "${extra[@]}"
    [ "$name" = forgot ] && drained "${k%.*}.$name.$half" "${k%.*}" "$issued"
  done
  for k in e l; do
    merge_halves "$k.$name"
    local ok=0 h
    for h in a b; do
      if [ "${R[$k.$name.$h.statuses]}" = - ]; then
        ok=$(( ok + R[$k.$name.$h.requests] - R[$k.$name.$h.non2xx] ))
      else
        ok=$(( ok + $(tr ',' '\n' <<<"${R[$k.$name.$h.statuses]}" | awk -F: '$1 ~ /^2/ { n += $2 } END { print n + 0 }') ))
      fi
    done
    R[$k.$name.ok_per_s]=$(calc "$ok / ${R[$k.$name.secs]}" 1)
    if [ "$name" = forgot ]; then
      # Resets carried out, per second of the phase and of its drain.
      R[$k.$name.ok_per_s]=$(calc "(${R[$k.$name.a.done]} + ${R[$k.$name.b.done]}) / (${R[$k.$name.secs]} + ${R[$k.$name.a.drain]} + ${R[$k.$name.b.drain]})" 1)
      R[$k.$name.drain]=$(calc "${R[$k.$name.a.drain]} + ${R[$k.$name.b.drain]}" 1)
      R[$k.$name.done]=$(( R[$k.$name.a.done] + R[$k.$name.b.done] ))
    fi
    R[$k.$name.statuses]="${R[$k.$name.a.statuses]} / ${R[$k.$name.b.statuses]}"
    R[$k.$name.exhausted]=$(( ${R[$k.$name.a.exhausted]:-0} + ${R[$k.$name.b.exhausted]:-0} ))
  done
}
op login 8 /api/v1/auth/login WRK_METHOD=POST WRK_LOGINS="$LOGIN_USERS" WRK_PASSWORD="$PASSWORD" \
  WRK_COUNT=1
# The measured session, after the logins: beyond max_sessions_per_user (100)
# they end the user's oldest sessions.
declare -A CK
for k in e l; do
  use "$k"
  login_cookie "$k" "$EMAIL" "$PASSWORD"
  CK[$k]=$COOKIE
done
op me 64 /api/v1/users/me
op forgot 8 /api/v1/auth/password/forgot WRK_METHOD=POST WRK_EMAILS="$RESET_USERS" WRK_XFF=1 WRK_COUNT=1
op consume 8 /api/v1/auth/verify-email WRK_METHOD=POST WRK_COUNT=1
down e
down l

# --- purge_expired under load ----------------------------------------------------------
# chunks PREFIX N|until-purged: /users/me at 64 in PURGE_CHUNK_SECS windows.
# Sets R[PREFIX.n], .rps (all windows), .p99_max, .p99_median.
chunks() {
  local prefix=$1 want=$2 i=0 reqs=0 secs=0 p99s=() start=$SECONDS
  while :; do
    i=$(( i + 1 ))
    REPEAT=0 run_wrk "$prefix.$i" 64 "$PURGE_CHUNK_SECS" /api/v1/users/me WRK_COOKIE="$COOKIE"
    reqs=$(( reqs + R[$prefix.$i.requests] ))
    secs=$(calc "$secs + ${R[$prefix.$i.secs]}" 3)
    p99s+=("${R[$prefix.$i.p99_ms]}")
    if [ "$want" = until-purged ]; then
      grep -q 'purged expired records\|purging expired records failed' "$SERVER_ERR" && break
      (( SECONDS - start < PURGE_MAX_SECS )) || { R[$prefix.unfinished]=1; break; }
    else
      (( i < want )) || break
    fi
  done
  R[$prefix.n]=$i
  R[$prefix.rps]=$(calc "$reqs / $secs" 0)
  R[$prefix.p99_max]=$(printf '%s\n' "${p99s[@]}" | sort -g | tail -1)
  R[$prefix.p99_median]=$(printf '%s\n' "${p99s[@]}" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
}
BASE_CHUNKS=$(( (LOAD_SECS + PURGE_CHUNK_SECS - 1) / PURGE_CHUNK_SECS ))
(( BASE_CHUNKS >= 2 )) || BASE_CHUNKS=2
server p0 "$DATABASE_URL" "$NO_PURGE"
login_cookie p0 "$EMAIL" "$PASSWORD"
chunks nopurge "$BASE_CHUNKS"
down p0
# The same session on a server that purges two seconds after its start.
server p1 "$DATABASE_URL" CLEANUP_INTERVAL_SECS=2 RUST_LOG=info,example_server=debug
PURGE_T0=$SECONDS
chunks purge until-purged
PURGE_LINE=$(grep -m1 'purged expired records\|purging expired records failed' "$SERVER_ERR" || true)
PURGE_END=$(python3 -c '
import json, sys
from datetime import datetime
line = sys.argv[1]
try:
    print(json.loads(line)["timestamp"])
except Exception:
    print("")' "$PURGE_LINE")
PURGE_STARTED=$(python3 -c '
import json, sys
for line in open(sys.argv[1], errors="replace"):
    if "listening" in line or "storage:" in line:
        try:
            print(json.loads(line)["timestamp"]); break
        except Exception:
            pass' "$SERVER_ERR")
down p1
EXPIRED_AFTER=$(q "$DATABASE_URL" -c "SELECT count(*) FROM \"$S\".sessions WHERE idle_expires_at <= now() OR absolute_expires_at <= now() OR revoked_at <= now()")
PURGE_SECS=$(python3 -c '
import sys
from datetime import datetime
try:
    a = datetime.fromisoformat(sys.argv[1].replace("Z", "+00:00"))
    b = datetime.fromisoformat(sys.argv[2].replace("Z", "+00:00"))
    print("%.1f" % ((b - a).total_seconds() - 2))
except Exception:
    print("n/a")' "$PURGE_STARTED" "$PURGE_END")

# --- Redis memory per session ------------------------------------------------------------
if [ -n "${REDIS_URL:-}" ]; then
  MEM_PREFIX="$REDIS_PREFIX-mem"
  MEM_LOGINS=$(( SCALE_REDIS_SESSIONS < SCALE_USERS ? SCALE_REDIS_SESSIONS : SCALE_USERS ))
  # Loaded users share one password: one login each of u1 .. uN, so each has
  # one session, as most users do.
  server m "$DATABASE_URL" "$NO_PURGE" REDIS_URL="$REDIS_URL" REDIS_KEY_PREFIX="$MEM_PREFIX"
  log "[m] $MEM_LOGINS logins, one per user"
  timeout "$(remaining)" python3 - "$ADDR" "$MEM_LOGINS" "$PASSWORD" "$ORIGIN" >"$WORK/m.logins.txt" 2>&1 <<'PY' || die "the logins for the memory figure failed: $(tail -3 "$WORK/m.logins.txt")"
# N logins of u1 .. uN, 4 at a time; each leaves a live session in Redis.
import http.client, json, sys, threading
addr, n, password, origin = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
host, port = addr.rsplit(":", 1)
lock, left, ok, other = threading.Lock(), [n], [0], {}
def work():
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    while True:
        with lock:
            if left[0] == 0:
                return
            i = left[0]
            left[0] -= 1
        body = json.dumps({"email": "u%d@scale.example" % i, "password": password})
        conn.request("POST", "/api/v1/auth/login", body, {"Content-Type": "application/json", "Origin": origin})
        r = conn.getresponse()
        r.read()
        with lock:
            if r.status == 200:
                ok[0] += 1
            else:
                other[r.status] = other.get(r.status, 0) + 1
ts = [threading.Thread(target=work) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print("PROBE ok=%d other=%s" % (ok[0], ",".join("%d:%d" % kv for kv in sorted(other.items())) or "-"))
PY
  parse_result m.logins "$WORK/m.logins.txt"
  redis-cli -u "$REDIS_URL" --scan --pattern "$MEM_PREFIX:*" >"$WORK/m.keys"
  # MEMORY USAGE key SAMPLES 0: every element counted.
  sed 's/.*/MEMORY USAGE "&" SAMPLES 0/' "$WORK/m.keys" | redis-cli -u "$REDIS_URL" >"$WORK/m.usage"
  MEM_TABLE=$(paste "$WORK/m.keys" "$WORK/m.usage" | awk -v p="$MEM_PREFIX" '
    { k = substr($1, length(p) + 2)
      kind = (k ~ /^\{t:.*\}:r$/) ? "session record (string)" : (k ~ /^\{u:.*\}:ix$/) ? "user index (sorted set)" :
             (k ~ /^att:/) ? "attempt counters" : "other"
      n[kind]++; b[kind] += $2
      if (kind != "attempt counters") total += $2
      if (kind == "session record (string)") sessions++ }
    END { for (x in n) printf "| %s | %d | %d | %.0f |\n", x, n[x], b[x], b[x] / n[x]
          printf "TOTAL %d %d\n", total, sessions }')
  MEM_TOTAL=$(awk '/^TOTAL/ { print $2 }' <<<"$MEM_TABLE")
  MEM_SESSIONS=$(awk '/^TOTAL/ { print $3 }' <<<"$MEM_TABLE")
  down m
fi

# --- report ------------------------------------------------------------------------------
g() { echo "${R[$1]:-n/a}"; }
REV=${AUTH_REV:-$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- 2>/dev/null || echo ', uncommitted changes')}
model=$(lscpu | awk -F: '/^Model name/ { gsub(/^ +/, "", $2); print $2; exit }')
per_m() { calc "$1 * 1000000 / $2" 1; }
echo "Data-scale test of $(date -u +%Y-%m-%d) on $model, $CPUS CPUs ($REV); PostgreSQL $(q "$DATABASE_URL" -c 'SHOW server_version'), tables in schema \`$S\`; sessions in $SESSION_STORE; wrk on the same CPUs; ${LOAD_SECS} s per phase (EMPTY LOADED LOADED EMPTY halves)."
echo
echo "Loaded: $SCALE_USERS users, $SCALE_SESSIONS sessions ($EXPIRED_BEFORE past a deadline or revoked), $SCALE_AUDIT audit events; $LOADED_SIZE."
echo
echo "| table | rows | load time | per million rows |"
echo "|---|---:|---:|---:|"
echo "| users | $SCALE_USERS | ${LOADT[users]} s | $(per_m "${LOADT[users]}" "$SCALE_USERS") s |"
echo "| password_credentials | $SCALE_USERS | ${LOADT[password_credentials]} s | $(per_m "${LOADT[password_credentials]}" "$SCALE_USERS") s |"
echo "| sessions | $SCALE_SESSIONS | ${LOADT[sessions]} s | $(per_m "${LOADT[sessions]}" "$SCALE_SESSIONS") s |"
echo "| audit_log | $SCALE_AUDIT | ${LOADT[audit_log]} s | $(per_m "${LOADT[audit_log]}" "$SCALE_AUDIT") s |"
echo "| all, then VACUUM (ANALYZE) | $(( 2 * SCALE_USERS + SCALE_SESSIONS + SCALE_AUDIT )) | ${LOAD_SECS_TOTAL} s + ${LOADT[vacuum_analyze]} s | $(per_m "$LOAD_SECS_TOTAL" $(( 2 * SCALE_USERS + SCALE_SESSIONS + SCALE_AUDIT ))) s |"
echo
echo "Per second: 2xx answers; for reset requests, the resets carried out (a token issued), the server's background work included."
echo
echo "| operation | sessions in | empty: per s | loaded: per s | loaded / empty | p99 empty | p99 loaded | statuses (empty; loaded) |"
echo "|---|---|---:|---:|---:|---:|---:|---|"
row() { # name label
  local e l ratio note=""
  e=$(g e.$1.ok_per_s)
  l=$(g l.$1.ok_per_s)
  ratio=$(awk -v l="$l" -v e="$e" 'BEGIN { if (e > 0) printf "%.2f", l / e; else print "n/a" }')
  if (( $(g e.$1.exhausted) + $(g l.$1.exhausted) > 0 )); then note=" (tokens ran out: $(g e.$1.exhausted) / $(g l.$1.exhausted) requests without one; a lower bound)"; fi
  echo "| $2 | $SESSION_STORE | $(calc "$e" 0) | $(calc "$l" 0) | $ratio ($(verdict "$ratio >= 0.9"))$note | $(ms "$(g e.$1.p99_ms)") | $(ms "$(g l.$1.p99_ms)") | $(g e.$1.statuses); $(g l.$1.statuses) |"
}
row login "login, c=8"
row me "GET /users/me, c=64"
row forgot "reset request, c=8 (random known u<k>, k <= $RESET_USERS; a new client address each): resets carried out per second, the background's drain included ($(g e.forgot.done) in $(g e.forgot.drain) s of drain; $(g l.forgot.done) in $(g l.forgot.drain) s)"
row consume "token consumption (verify-email, fresh tokens), c=8"
echo
echo "purge_expired under load (loaded database, sessions in PostgreSQL; GET /users/me, c=64, ${PURGE_CHUNK_SECS} s windows):"
echo
echo "| run | windows | req/s | p99, median window | p99, worst window |"
echo "|---|---:|---:|---:|---:|"
echo "| no purge | $(g nopurge.n) | $(g nopurge.rps) | $(ms "$(g nopurge.p99_median)") | $(ms "$(g nopurge.p99_max)") |"
echo "| during the purge | $(g purge.n) | $(g purge.rps) | $(ms "$(g purge.p99_median)") | $(ms "$(g purge.p99_max)") ($(verdict "$(g purge.p99_max) <= 2 * $(g nopurge.p99_max)") against 2x) |"
echo
if [ -n "$PURGE_LINE" ]; then
  echo "The purge logged its end ${PURGE_SECS} s after its timer fired (2 s after the server's start-up line; a rough bound, not the purge's own time$( [ "${R[purge.unfinished]:-0}" = 1 ] && echo "; load stopped at PURGE_MAX_SECS before it ended")); expired or revoked sessions before $EXPIRED_BEFORE, after $EXPIRED_AFTER. Its log line: \`$(python3 -c 'import json,sys; f=json.loads(sys.argv[1]).get("fields",{}); print(" ".join("%s=%s" % kv for kv in f.items()))' "$PURGE_LINE" 2>/dev/null || echo "$PURGE_LINE")\`"
else
  echo "The purge did not finish within PURGE_MAX_SECS (${PURGE_MAX_SECS} s): the windows above are all during it; expired or revoked sessions before $EXPIRED_BEFORE, after $EXPIRED_AFTER."
fi
if [ -n "${REDIS_URL:-}" ]; then
  echo
  echo "Redis memory: $(g m.logins.ok) logins, one for each of $MEM_LOGINS users (other answers: $(g m.logins.other)); MEMORY USAGE ... SAMPLES 0 of every key under the prefix:"
  echo
  echo "| keys | count | bytes | bytes per key |"
  echo "|---|---:|---:|---:|"
  grep -v '^TOTAL' <<<"$MEM_TABLE" | sort
  echo
  per=$(awk -v t="$MEM_TOTAL" -v n="$MEM_SESSIONS" 'BEGIN { if (n > 0) printf "%.0f", t / n; else print "n/a" }')
  echo "Per live session (every key but the counters, over $MEM_SESSIONS session hashes): $per bytes ($(verdict "$per < 512") against < 512)."
fi
echo
echo "Run time: build ${BUILD_SECS} s, everything else $(( SECONDS - MEASURE_START )) s (bound ${LOAD_BUDGET_SECS} s)."

if [ "${SCALE_KEEP_DB:-0}" = 1 ]; then
  log "databases kept: $LOADED_DB, $EMPTY_DB"
else
  drop_db "$DATABASE_URL"
  drop_db "$EMPTY_DATABASE_URL"
fi
