#!/usr/bin/env python3
"""Timing uniformity of login, password-reset and registration requests (issues 8
and 15; rule S3).

Manual: .ci/run does not run it. Python 3.11 standard library only.

Builds and starts the release example server on 127.0.0.1 (a free port,
TRUSTED_PROXIES=127.0.0.1 so every request can carry its own X-Forwarded-For
from the documentation prefix 2001:db8::/32 and no per-IP limit is reached),
registers and verifies enough users, then sends one request at a time, the
classes shuffled together so that drift (CPU frequency, a neighbour's build)
hits every class alike:

  POST /api/v1/auth/login
    unknown   an address no account has (a fresh one each time)
    wrong     a known, verified account with a wrong password; every account
              takes at most 4 of them, below the lockout threshold of 5
    locked    an account driven past the threshold (answers 429 `locked`)
  POST /api/v1/auth/password/forgot
    unknown   an address no account has
    known     a known account under its per-account limit (a mail is sent)
    throttled a known account over that limit (3 mails, then 1 min doubling
              after the last mail: mostly no mail is sent)
  POST /api/v1/auth/register
    new       a fresh address (the account is created)
    taken     the address of a verified account (the owner may get a notice)

It reports, per class, the median and spread of the latency seen by the client
and of the server's own `elapsed_ms` (from its JSON request log), and for each
pair of classes a two-sided Mann-Whitney U test (normal approximation with tie
and continuity corrections) and the Hodges-Lehmann shift. It also estimates the
smallest shift the sample size can detect, twice: from the spread (power 80%),
and by planting a 5% shift in random halves of a reference class.

Sample sizes: 600 per login class and 2000 per reset-request class (the
defaults). A login takes about 14 ms with a robust spread (IQR / 1.349) of
0.5 to 1.5 ms here, so 600 against 600 detect a shift of 0.08 to 0.24 ms (0.6
to 1.6% of the median) with power 80% at alpha 0.05: far below the 5% to be
ruled out. A reset request takes about 0.25 ms at the client with relatively
more noise (Python's own overhead, the scheduler); 2000 against 2000 detect
1.6 to 2.5%. The report recomputes both figures from each run's own spread, and
checks them by planting a 5% shift in random halves of a class (found in 200 of
200 splits at these sizes, at alpha 0.05 / 3).

Locked accounts: a lock lasts 5 s after the fifth failure and doubles with each
failure after it; attempts during a lock are not counted and do not extend it.
So a small pool of accounts is locked first, and whenever none of them is
surely locked the script sends one more wrong password to an account whose lock
has surely ended ("relock", not a sample), which locks it for twice as long.

  scripts/timing.py                   # memory store, defaults below
  scripts/timing.py --n-login 900 --n-forgot 3000
  DATABASE_URL=... REDIS_URL=... scripts/timing.py --stores env

Prints markdown (tables and a verdict) on stdout; progress on stderr. AUTH_REV
names the source measured when the tree is not a git checkout.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple, timing"
WRONG = "correct horse battery staple, wrong!"  # same length as PASSWORD
LOCK_THRESHOLD = 5  # AuthConfig::account_lockout default
LOCK_BASE_S = 5.0  # its base delay, doubling per further failure
WRONG_PER_ACCOUNT = LOCK_THRESHOLD - 1
FORGOT_UNTHROTTLED = 3  # account_request_limit: 3 mails, then 1 min doubling after the last mail
START = time.monotonic()


def log(msg: str) -> None:
    print(f"[timing {time.monotonic() - START:5.0f}s] {msg}", file=sys.stderr, flush=True)


def random_ip(rng: random.Random) -> str:
    """A fresh address of the documentation prefix 2001:db8::/32 (never routed)."""
    return "2001:db8:" + ":".join(f"{rng.getrandbits(16):x}" for _ in range(6))


# --- the server ------------------------------------------------------------------


class Server:
    def __init__(self, binary: Path, stores_env: bool, workdir: Path) -> None:
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "REDIS_URL", "PUBLIC_URL", "BIND_ADDR", "SMTP_URL",
                            "TRUSTED_PROXIES", "RUST_LOG")}
        env.update(
            BIND_ADDR="127.0.0.1:0",
            SECRET_KEY=secrets.token_urlsafe(48),
            TRUSTED_PROXIES="127.0.0.1",
            LOG_FORMAT="json",
        )
        args = [str(binary)]
        if stores_env:
            env["DATABASE_URL"] = os.environ["DATABASE_URL"]
            env["REDIS_URL"] = os.environ["REDIS_URL"]
            env["REDIS_KEY_PREFIX"] = f"timing-{os.getpid()}-{int(time.time())}"
            args.append("--migrate")
        self.out_path = workdir / "server.out"
        self.err_path = workdir / "server.err"
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self.out, stderr=self.err,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            m = re.search(r"listening on http://([0-9.]+):(\d+)", self.stdout())
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                sys.exit("the server did not start: " + self.err_path.read_text()[-2000:])
            time.sleep(0.1)
        self.origin = f"http://localhost:{self.port}"  # PUBLIC_URL's default

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        self.err.close()

    def elapsed_by_request_id(self) -> dict[str, float]:
        """The server's own `elapsed_ms` of every logged request, by request id."""
        found: dict[str, float] = {}
        with open(self.err_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if '"elapsed_ms"' not in line:
                    continue
                try:
                    rec = json.loads(line)
                    rid = rec["span"]["request_id"]
                    found[rid] = float(rec["fields"]["elapsed_ms"])
                except (ValueError, KeyError, TypeError):
                    continue
        return found


class Client:
    """One keep-alive connection; `post` returns (status, body, ms, request id)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, payload: dict, ip: str) -> tuple[int, bytes, float, str]:
        body = json.dumps(payload)
        headers = {
            "Content-Type": "application/json",
            "Origin": self.server.origin,
            "User-Agent": "timing.py",
            "X-Forwarded-For": ip,
        }
        for attempt in range(3):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=30)
                self.conn.connect()
            try:
                t0 = time.perf_counter_ns()
                self.conn.request("POST", path, body, headers)
                resp = self.conn.getresponse()
                data = resp.read()
                ms = (time.perf_counter_ns() - t0) / 1e6
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                continue
            if (resp.getheader("Connection") or "").lower() == "close":
                self.conn.close()
                self.conn = None
            return resp.status, data, ms, resp.getheader("X-Request-Id") or ""
        raise RuntimeError("unreachable")


# --- statistics --------------------------------------------------------------------


Z_975, Z_80 = 1.959964, 0.841621


def percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    if not s:
        return math.nan
    k = (len(s) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def robust_sd(xs: list[float]) -> float:
    return (percentile(xs, 75) - percentile(xs, 25)) / 1.349


def mann_whitney(x: list[float], y: list[float]) -> tuple[float, float, float]:
    """Two-sided Mann-Whitney U: (U of x, z, p), normal approximation with tie
    and continuity corrections."""
    n1, n2 = len(x), len(y)
    pooled = sorted([(v, 0) for v in x] + [(v, 1) for v in y])
    n = n1 + n2
    rank_x = 0.0
    tie_term = 0.0
    i = 0
    while i < n:
        j = i
        while j + 1 < n and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        avg = (i + j) / 2 + 1
        t = j - i + 1
        tie_term += t**3 - t
        rank_x += avg * sum(1 for k in range(i, j + 1) if pooled[k][1] == 0)
        i = j + 1
    u = rank_x - n1 * (n1 + 1) / 2
    mu = n1 * n2 / 2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
    if sigma == 0:
        return u, 0.0, 1.0
    d = u - mu
    z = (d - math.copysign(0.5, d)) / sigma if d else 0.0
    return u, z, math.erfc(abs(z) / math.sqrt(2))


def hodges_lehmann(x: list[float], y: list[float]) -> tuple[float, float, float]:
    """Median of all differences x_i - y_j (the shift estimate that goes with U),
    and its distribution-free 95% confidence interval (Moses)."""
    d = sorted(a - b for a in x for b in y)
    m, n = len(x), len(y)
    k = max(1, math.floor(m * n / 2 - Z_975 * math.sqrt(m * n * (m + n + 1) / 12)))
    return statistics.median(d), d[k - 1], d[m * n - k]


def mde(xs: list[float], ys: list[float]) -> float:
    """Smallest shift detectable with power 80% at alpha 0.05 (two-sided) by a
    Mann-Whitney test, from the robust spread: the t-test formula divided by
    sqrt(3/pi), the test's efficiency relative to the t-test under normality."""
    sd = math.sqrt((robust_sd(xs) ** 2 + robust_sd(ys) ** 2) / 2)
    return (Z_975 + Z_80) * sd * math.sqrt(1 / len(xs) + 1 / len(ys)) / math.sqrt(3 / math.pi)


def planted_power(xs: list[float], shift: float, alpha: float, reps: int, rng: random.Random) -> float:
    """Share of random halves of `xs` in which a shift of `shift` (relative)
    planted in one half is detected at `alpha`: an empirical power at half the
    sample size, on the real noise."""
    hits = 0
    for _ in range(reps):
        s = xs[:]
        rng.shuffle(s)
        h = len(s) // 2
        a, b = s[:h], [v * (1 + shift) for v in s[h:2 * h]]
        if mann_whitney(a, b)[2] < alpha:
            hits += 1
    return hits / reps


# --- the run -------------------------------------------------------------------------


@dataclass
class Lockee:
    email: str
    count: int = 0  # failures counted by the server
    lock_from: float = 0.0  # monotonic start of the request that last counted
    lock_to: float = 0.0  # monotonic end of it
    def delay(self) -> float:
        return LOCK_BASE_S * 2 ** (self.count - LOCK_THRESHOLD) if self.count >= LOCK_THRESHOLD else 0.0
    def surely_locked(self, now: float) -> bool:
        return self.count >= LOCK_THRESHOLD and now < self.lock_from + self.delay() - 0.1
    def surely_free(self, now: float) -> bool:
        return now > self.lock_to + self.delay() + 0.2


@dataclass
class Sample:
    endpoint: str
    cls: str
    status: int
    code: str
    ms: float
    rid: str
    server_ms: float | None = None


@dataclass
class Plan:
    n_login: int
    n_forgot: int
    n_register: int
    lock_pool: int
    throttle_pool: int
    samples: list[Sample] = field(default_factory=list)
    unexpected: dict[str, int] = field(default_factory=dict)


def error_code(body: bytes) -> str:
    try:
        return json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return ""


def setup_accounts(server: Server, count: int, tag: str, rng: random.Random) -> list[str]:
    emails = [f"t{tag}-k{i:05d}@example.com" for i in range(count)]
    lock = threading.Lock()

    def register(chunk: list[str]) -> None:
        c = Client(server)
        local = random.Random(rng.random())
        for e in chunk:
            status, body, _, _ = c.post("/api/v1/auth/register", {"email": e, "password": PASSWORD},
                                        random_ip(local))
            if status != 202:
                with lock:
                    sys.exit(f"register {e}: {status} {body[:200]!r}")

    log(f"registering {count} accounts")
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(register, [emails[0::2], emails[1::2]]))
    tokens: dict[str, str] = {}
    deadline = time.monotonic() + 60
    pattern = re.compile(r"^To: (\S+)\n(?:.*\n){0,8}?.*verify-email\?token=([A-Za-z0-9_-]+)", re.M)
    while len(tokens) < count:
        tokens = {m.group(1): m.group(2) for m in pattern.finditer(server.stdout())}
        tokens = {e: t for e, t in tokens.items() if e.startswith(f"t{tag}-")}
        if time.monotonic() > deadline:
            sys.exit(f"only {len(tokens)} of {count} verification emails arrived")
        time.sleep(0.2)
    log(f"verifying {count} accounts")

    def verify(chunk: list[str]) -> None:
        c = Client(server)
        local = random.Random(rng.random())
        for e in chunk:
            status, body, _, _ = c.post("/api/v1/auth/verify-email", {"token": tokens[e]}, random_ip(local))
            if status != 200:
                sys.exit(f"verify {e}: {status} {body[:200]!r}")

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(verify, [emails[0::2], emails[1::2]]))
    return emails


def run(args: argparse.Namespace, server: Server, plan: Plan, rng: random.Random) -> None:
    tag = f"{os.getpid() % 10000:04d}{int(time.time()) % 100000:05d}"
    n_wrong_accounts = math.ceil(plan.n_login / WRONG_PER_ACCOUNT)
    n_known_accounts = math.ceil(plan.n_forgot / FORGOT_UNTHROTTLED)
    pool_size = max(n_wrong_accounts, n_known_accounts)
    emails = setup_accounts(server, pool_size + plan.lock_pool + plan.throttle_pool, tag, rng)
    general = emails[:pool_size]
    lockees = [Lockee(e) for e in emails[pool_size:pool_size + plan.lock_pool]]
    throttled = emails[pool_size + plan.lock_pool:]
    client = Client(server)

    def unknown_email() -> str:
        return f"t{tag}-u{rng.getrandbits(20):05x}"[: len(general[0]) - len("@example.com")] + "@example.com"

    def login(email: str, password: str) -> tuple[int, bytes, float, str]:
        return client.post("/api/v1/auth/login", {"email": email, "password": password}, random_ip(rng))

    def forgot(email: str) -> tuple[int, bytes, float, str]:
        return client.post("/api/v1/auth/password/forgot", {"email": email}, random_ip(rng))

    def register(email: str) -> tuple[int, bytes, float, str]:
        return client.post("/api/v1/auth/register", {"email": email, "password": PASSWORD}, random_ip(rng))

    def new_email() -> str:
        return f"t{tag}-n{rng.getrandbits(20):05x}"[: len(general[0]) - len("@example.com")] + "@example.com"

    def count_failure(lk: Lockee, t0: float, status: int) -> None:
        if status == 401:
            lk.count += 1
            lk.lock_from, lk.lock_to = t0, time.monotonic()

    log(f"locking {len(lockees)} accounts, throttling {len(throttled)}, warming up")
    for lk in lockees:
        for _ in range(LOCK_THRESHOLD):
            t0 = time.monotonic()
            status, *_ = login(lk.email, WRONG)
            count_failure(lk, t0, status)
        if lk.count != LOCK_THRESHOLD:
            sys.exit(f"locking {lk.email}: {lk.count} failures counted")
    for e in throttled:
        for _ in range(FORGOT_UNTHROTTLED):
            forgot(e)
    for _ in range(40):  # warm-up, not recorded
        login(unknown_email(), WRONG)
        forgot(unknown_email())

    wrong_queue = [e for e in general for _ in range(WRONG_PER_ACCOUNT)][: plan.n_login]
    known_queue = [e for e in general for _ in range(FORGOT_UNTHROTTLED)][: plan.n_forgot]
    rng.shuffle(wrong_queue)
    rng.shuffle(known_queue)
    schedule = ([("login", c) for c in ("unknown", "wrong", "locked") for _ in range(plan.n_login)]
                + [("forgot", c) for c in ("unknown", "known", "throttled") for _ in range(plan.n_forgot)]
                + [("register", c) for c in ("new", "taken") for _ in range(plan.n_register)])
    rng.shuffle(schedule)
    log(f"sampling: {len(schedule)} requests, one at a time, classes shuffled")

    def record(endpoint: str, cls: str, expect: tuple[int, str], result: tuple[int, bytes, float, str]) -> None:
        status, body, ms, rid = result
        code = error_code(body)
        if (status, code) == expect:
            plan.samples.append(Sample(endpoint, cls, status, code, ms, rid))
        else:
            key = f"{endpoint}/{cls}: {status} {code}".strip()
            plan.unexpected[key] = plan.unexpected.get(key, 0) + 1

    relocks = 0
    last_report = time.monotonic()
    for i, (endpoint, cls) in enumerate(schedule):
        if time.monotonic() - last_report > 10:
            log(f"  {i} of {len(schedule)}")
            last_report = time.monotonic()
        if endpoint == "register":
            # A new address each time (the 20-bit suffix repeats rarely; a
            # repeat is then a taken one and is counted as unexpected only if
            # the answer differs, which it must not).
            email = new_email() if cls == "new" else rng.choice(general)
            record(endpoint, cls, (202, ""), register(email))
            continue
        if endpoint == "forgot":
            email = {"unknown": unknown_email, "known": known_queue.pop,
                     "throttled": lambda: rng.choice(throttled)}[cls]()
            record(endpoint, cls, (202, ""), forgot(email))
            continue
        if cls == "unknown":
            record(endpoint, cls, (401, "invalid_credentials"), login(unknown_email(), WRONG))
        elif cls == "wrong":
            record(endpoint, cls, (401, "invalid_credentials"), login(wrong_queue.pop(), WRONG))
        else:
            while True:
                now = time.monotonic()
                locked = [lk for lk in lockees if lk.surely_locked(now)]
                if locked:
                    lk = rng.choice(locked)
                    t0 = time.monotonic()
                    result = login(lk.email, WRONG)
                    count_failure(lk, t0, result[0])
                    record(endpoint, cls, (429, "locked"), result)
                    break
                free = [lk for lk in lockees if lk.surely_free(now)]
                if free:
                    lk = rng.choice(free)
                    t0 = time.monotonic()
                    status, *_ = login(lk.email, WRONG)
                    count_failure(lk, t0, status)
                    relocks += 1
                else:
                    time.sleep(0.05)
    plan.unexpected["login/relock (not a sample)"] = relocks

    elapsed = server.elapsed_by_request_id()
    for s in plan.samples:
        s.server_ms = elapsed.get(s.rid)


# --- the report ----------------------------------------------------------------------


def fmt_ms(v: float) -> str:
    if math.isnan(v):
        return "n/a"
    return f"{v:.2f} ms" if v >= 1 else f"{v * 1000:.0f} µs"


def signed_ms(v: float) -> str:
    return ("+" if v >= 0 else "-") + fmt_ms(abs(v))


def report(args: argparse.Namespace, plan: Plan, rng: random.Random, wall: float) -> bool:
    by: dict[tuple[str, str], list[Sample]] = {}
    for s in plan.samples:
        by.setdefault((s.endpoint, s.cls), []).append(s)
    cpu = next((ln.split(":", 1)[1].strip() for ln in subprocess.run(
        ["lscpu"], capture_output=True, text=True).stdout.splitlines() if ln.startswith("Model name")), "?")
    rev = os.environ.get("AUTH_REV") or (subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        or "?") + ("" if subprocess.run(["git", "diff", "--quiet", "HEAD", "--"], cwd=ROOT,
                                         capture_output=True).returncode == 0 else ", uncommitted changes")
    print(f"Timing run of {time.strftime('%Y-%m-%d', time.gmtime())} on {cpu}, {os.cpu_count()} CPUs "
          f"({rev}); stores: {'PostgreSQL + Redis' if args.stores == 'env' else 'in-process memory'}; "
          f"seed {args.seed}; load average "
          f"{args.load_before} before, {' '.join(f'{x:.2f}' for x in os.getloadavg())} after; "
          f"{wall:.0f} s. Client: one keep-alive connection, one request at a time.")
    print()
    print("| endpoint | class | n | median, client | p10 - p90, client | median, server | "
          "p10 - p90, server |")
    print("|---|---|---:|---:|---:|---:|---:|")
    classes = {"login": ["unknown", "wrong", "locked"], "forgot": ["unknown", "known", "throttled"],
               "register": ["new", "taken"]}
    names = {"login": "POST /auth/login", "forgot": "POST /auth/password/forgot",
             "register": "POST /auth/register"}
    for ep, cls_list in classes.items():
        for c in cls_list:
            xs = [s.ms for s in by.get((ep, c), [])]
            ss = [s.server_ms for s in by.get((ep, c), []) if s.server_ms is not None]
            print(f"| {names[ep]} | {c} | {len(xs)} | {fmt_ms(statistics.median(xs)) if xs else 'n/a'} | "
                  f"{fmt_ms(percentile(xs, 10))} - {fmt_ms(percentile(xs, 90))} | "
                  f"{fmt_ms(statistics.median(ss)) if ss else 'n/a'} | "
                  f"{fmt_ms(percentile(ss, 10))} - {fmt_ms(percentile(ss, 90))} |")
    print()
    print("| comparison (a vs b) | medians a / b - 1 | Hodges-Lehmann shift a - b [95% CI], "
          "share of b | Mann-Whitney p, client | p, server | detectable shift (80% power) | verdict |")
    print("|---|---:|---:|---:|---:|---:|---|")
    ok = True
    notes = []
    for ep, pairs in {"login": [("wrong", "unknown"), ("locked", "unknown"), ("locked", "wrong")],
                      "forgot": [("known", "unknown"), ("throttled", "unknown"),
                                 ("throttled", "known")],
                      "register": [("taken", "new")]}.items():
        alpha = 0.05 / len(pairs)  # Bonferroni within each endpoint
        for a, b in pairs:
            xa = [s.ms for s in by.get((ep, a), [])]
            xb = [s.ms for s in by.get((ep, b), [])]
            if len(xa) < 20 or len(xb) < 20:
                print(f"| {ep}: {a} vs {b} | too few samples | | | | | FAIL |")
                ok = False
                continue
            sa = [s.server_ms for s in by[(ep, a)] if s.server_ms is not None]
            sb = [s.server_ms for s in by[(ep, b)] if s.server_ms is not None]
            med_a, med_b = statistics.median(xa), statistics.median(xb)
            rel = med_a / med_b - 1
            hl, lo, hi = hodges_lehmann(xa, xb)
            _, _, p = mann_whitney(xa, xb)
            p_srv = mann_whitney(sa, sb)[2] if len(sa) > 20 and len(sb) > 20 else math.nan
            d = mde(xa, xb)
            within = abs(rel) < 0.05
            found = p < alpha
            verdict = ("pass" if within and not found else
                       "FAIL: medians differ by 5% or more" if not within else
                       f"difference found (p < {alpha:.3f}), below 5%")
            ok = ok and within and not found
            inside = "inside" if -0.05 < lo / med_b and hi / med_b < 0.05 else "not inside"
            print(f"| {ep}: {a} vs {b} | {rel * 100:+.2f}% | {signed_ms(hl)} [{signed_ms(lo)}, "
                  f"{signed_ms(hi)}], {hl / med_b * 100:+.2f}% [{lo / med_b * 100:+.1f}%, "
                  f"{hi / med_b * 100:+.1f}%]: {inside} +-5% | {p:.3g} | {p_srv:.3g} | {fmt_ms(d)} "
                  f"({d / med_b * 100:.1f}%) | {verdict} |")
        ref = [s.ms for s in by.get((ep, pairs[0][1]), [])]
        if len(ref) >= 40:
            power = planted_power(ref, 0.05, alpha, args.power_reps, rng)
            notes.append(f"- {names[ep]}: a 5% shift planted in one random half of the `{pairs[0][1]}` "
                         f"class ({len(ref) // 2} vs {len(ref) // 2}) was detected at alpha "
                         f"{alpha:.4f} in {power * 100:.0f}% of {args.power_reps} splits.")
    print()
    print("Power: alpha 0.05 two-sided, Bonferroni-corrected over the 3 comparisons of each "
          "endpoint. \"Detectable shift\" is the shift a Mann-Whitney test finds with 80% power "
          "at alpha 0.05 given the measured spread (robust SD = IQR / 1.349) and n.")
    print("\n".join(notes))
    unexpected = {k: v for k, v in plan.unexpected.items() if v}
    if unexpected:
        print("- Not samples: " + "; ".join(f"{k} x{v}" for k, v in sorted(unexpected.items())) + ".")
    print()
    print(f"Overall: {'pass' if ok else 'FAIL'} (target: every pair's medians within 5% and no "
          "difference found at the client).")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-login", type=int, default=600, help="samples per login class (600)")
    ap.add_argument("--n-forgot", type=int, default=2000, help="samples per forgot class (2000)")
    ap.add_argument("--n-register", type=int, default=400, help="samples per register class (400)")
    ap.add_argument("--lock-pool", type=int, default=6, help="accounts kept locked (6)")
    ap.add_argument("--throttle-pool", type=int, default=8, help="accounts over the reset limit (8)")
    ap.add_argument("--seed", type=int, default=None, help="shuffle seed (random)")
    ap.add_argument("--power-reps", type=int, default=200, help="random splits for the planted shift (200)")
    ap.add_argument("--stores", choices=["memory", "env"], default="memory",
                    help="memory (default), or env: DATABASE_URL and REDIS_URL (features postgres,redis)")
    ap.add_argument("--no-build", action="store_true", help="use the binary already built")
    ap.add_argument("--keep", action="store_true", help="keep the server's output")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = secrets.randbelow(1 << 31)
    rng = random.Random(args.seed)
    args.load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    if args.stores == "env" and not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        sys.exit("--stores env needs DATABASE_URL and REDIS_URL")

    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    binary = target / "release" / "example-server"
    if not args.no_build:
        cmd = ["cargo", "build", "--release", "--quiet", "-p", "example-server"]
        if args.stores == "env":
            cmd += ["--features", "postgres,redis"]
        log(" ".join(cmd))
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=sys.stderr)
    if not binary.exists():
        sys.exit(f"no server binary at {binary}")

    workdir = Path(tempfile.mkdtemp(prefix="auth-timing."))
    server = Server(binary, args.stores == "env", workdir)
    plan = Plan(args.n_login, args.n_forgot, args.n_register, args.lock_pool, args.throttle_pool)
    t0 = time.monotonic()
    try:
        run(args, server, plan, rng)
    finally:
        server.stop()
    ok = report(args, plan, rng, time.monotonic() - t0)
    if args.keep:
        log(f"server output kept in {workdir}")
    else:
        for p in workdir.iterdir():
            p.unlink()
        workdir.rmdir()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
