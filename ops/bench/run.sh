#!/usr/bin/env bash
# Performance, measured as a client sees it: the release binary with its
# default logging, over loopback, driven by wrk; each figure printed beside
# its yardstick measured in the same run on this machine.
#
#   ops/bench/run.sh            # everything (about 4 minutes on 2 cores)
#   BENCH_SECONDS=5 BENCH_SIGNINS=2000 ops/bench/run.sh   # quicker
#   BENCH_PARTS=refresh ops/bench/run.sh   # some rows only: any of
#                                          # sqlite refresh many
#
# Needs wrk (apt-get install wrk), curl, python3, and for the refresh row
# PostgreSQL's server binaries and pgbench (Debian's postgresql package).
set -euo pipefail
cd "$(dirname "$0")/../.."

SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
MANY_PROJECTS=${BENCH_MANY_PROJECTS:-10000}
MANY_SESSIONS=${BENCH_MANY_SESSIONS:-2000}
SIGNINS=${BENCH_SIGNINS:-10000}
PARTS=" ${BENCH_PARTS:-sqlite refresh many} "
part() { [[ "$PARTS" == *" $1 "* ]]; }
CORES=$(nproc)
WORK=$(mktemp -d /tmp/identity-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  if [ -f "$WORK/pg/data/postmaster.pid" ]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg/data" stop -m immediate >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null || { echo "bench: $1 is required ($2)" >&2; exit 2; }; }
need wrk "apt-get install wrk"
need curl "apt-get install curl"
need python3 "apt-get install python3"

echo "building release binaries..." >&2
cargo build --release --locked -q -p identity -p identity-bench-tools
BIN=target/release
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json() { python3 -c "import sys, json; d = json.load(sys.stdin); print($1)"; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
wrk_rate() { awk '/Requests\/sec/ {print $2}'; }
wrk_p99() { awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}'; }

OP="bench-operator-token-0123456789abcdef"
# Starts identity on $1 (database URL); sets BASE, ADMIN, IDENTITY_PID, COLD_MS.
start_identity() {
  local pub adm started
  pub=$(free_port); adm=$(free_port)
  BASE="http://127.0.0.1:$pub"; ADMIN="http://127.0.0.1:$adm"
  started=$(date +%s%N)
  env -i PATH="$PATH" HOME="$WORK" \
    IDENTITY_DATABASE_URL="$1" IDENTITY_AUTO_MIGRATE=true \
    IDENTITY_PUBLIC_ADDR="127.0.0.1:$pub" IDENTITY_ADMIN_ADDR="127.0.0.1:$adm" \
    IDENTITY_ADMIN_TOKEN="$OP" IDENTITY_MASTER_KEY="$(printf '33%.0s' {1..32})" \
    IDENTITY_DEV_MODE=true IDENTITY_DB_MAX_CONNECTIONS=16 \
    "$BIN/identity" serve >"$WORK/identity.out" 2>"$WORK/identity.log" &
  IDENTITY_PID=$!
  PIDS+=("$IDENTITY_PID")
  until curl -sf "$BASE/readyz" >/dev/null 2>&1; do sleep 0.005; done
  COLD_MS=$(( ($(date +%s%N) - started) / 1000000 ))
}
admin() { curl -sf -X "$1" "$ADMIN$2" -H "Authorization: Bearer $OP" -H 'Content-Type: application/json' ${3:+-d "$3"}; }
public() { curl -sf -X POST "$BASE$1" -H "X-Project-Key: $PK" -H 'Content-Type: application/json' -d "$2"; }
new_project() {
  local created
  created=$(admin POST /v1/projects '{"name":"bench"}')
  PID_=$(echo "$created" | json 'd["project"]["id"]')
  PK=$(echo "$created" | json 'd["keys"]["publishable"]')
  admin PATCH "/v1/projects/$PID_" '{"settings":{"rate_limits":{"register_per_minute":0,"login_per_minute":0,"refresh_per_minute":0}}}' >/dev/null
}

# The machine is shared and noisy: each ratio is taken in $ROUNDS rounds,
# yardstick and identity back to back in every round, and the median
# round is reported.
# Sign-ins per second at $1 (a base URL) through the accounts listed in $2.
login_rate() {
  BENCH_LIST=$2 wrk -t2 -c8 -d"${SECS}s" -s ops/bench/login.lua "$1" 2>>"$WORK/wrk.err" | ok_rate
}
# Requests per second from wrk's output, counting only 2xx answers (a
# refused login is not a login).
ok_rate() {
  python3 -c '
import re, sys
t = sys.stdin.read()
n = int(re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", t).group(1))
d = re.search(r"requests in ([\d.]+)(ms|s|m)", t)
secs = float(d.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[d.group(2)]
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(f"{(n - (int(bad.group(1)) if bad else 0)) / secs:.1f}")'
}
session_rate() {
  wrk -t1 -c32 -d"${SECS}s" -H "X-Project-Key: $PK" -H "Authorization: Bearer $AT" "$1/v1/auth/session" | wrk_rate
}
# "ours yardstick" lines in, "ours yardstick ratio (all ratios)" of the median round out.
median_round() {
  python3 -c '
import sys
rows = [tuple(map(float, l.split())) for l in sys.stdin if l.strip()]
rows.sort(key=lambda r: r[0] / r[1])
ours, base = rows[len(rows) // 2]
each = ",".join(f"{a / b:.2f}" for a, b in rows)
print(f"{ours:.1f} {base:.1f} {ours / base:.2f} {each}")'
}
# ---- SQLite: cold start, idle memory, logins, session checks ----
if part sqlite; then
  start_identity "sqlite://$WORK/identity.db"
  sleep 1
  IDLE_RSS=$(rss_mib "$IDENTITY_PID")
  new_project
  BENCH_USERS=16
  : >"$WORK/logins.txt"; : >"$WORK/ba_logins.txt"
  for i in $(seq 0 $((BENCH_USERS - 1))); do
    echo "$PK bench$i@example.com" >>"$WORK/logins.txt"
    echo "- bench$i@example.com" >>"$WORK/ba_logins.txt"
    REG=$(public /v1/auth/register "{\"email\":\"bench$i@example.com\",\"password\":\"correct horse battery staple\"}")
  done
  AT=$(echo "$REG" | json 'd["access_token"]')
  curl -sf "$BASE/v1/auth/session" -H "X-Project-Key: $PK" -H "Authorization: Bearer $AT" -o "$WORK/session.json"

  BARE_PORT=$(free_port)
  "$BIN/bare-axum" "127.0.0.1:$BARE_PORT" "$WORK/session.json" & PIDS+=("$!")
  until curl -sf "http://127.0.0.1:$BARE_PORT/v1/auth/session" >/dev/null 2>&1; do sleep 0.01; done
  # better-auth (Node), the same Argon2id parameters: needs node and npm.
  BA_BASE=""
  if command -v node >/dev/null && command -v npm >/dev/null; then
    echo "installing better-auth..." >&2
    mkdir -p "$WORK/better-auth"
    cp ops/bench/better-auth/{package.json,package-lock.json,server.mjs} "$WORK/better-auth/"
    if (cd "$WORK/better-auth" && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>>"$WORK/npm.err"); then
      BA_PORT=$(free_port)
      node "$WORK/better-auth/server.mjs" "$BA_PORT" >"$WORK/better-auth.log" 2>&1 & PIDS+=("$!")
      BA_BASE="http://127.0.0.1:$BA_PORT"
      until curl -sf -o /dev/null "$BA_BASE/api/auth/ok" 2>/dev/null; do sleep 0.05; done
      for i in $(seq 0 $((BENCH_USERS - 1))); do
        curl -sf -o /dev/null -X POST "$BA_BASE/api/auth/sign-up/email" -H 'Content-Type: application/json' \
          -d "{\"email\":\"bench$i@example.com\",\"password\":\"correct horse battery staple\",\"name\":\"bench\"}"
      done
    else
      echo "bench: npm ci failed; the better-auth row is skipped (see below)" >&2
    fi
  fi

  : >"$WORK/login.rounds"; : >"$WORK/session.rounds"; : >"$WORK/ba.rounds"
  for round in $(seq 1 "$ROUNDS"); do
    echo "round $round of $ROUNDS: bare Argon2id on $CORES threads, logins, session checks, bare axum..." >&2
    ARGON=$("$BIN/bare-argon2" "$SECS" "$CORES")
    ARGON_SINGLE=$(echo "$ARGON" | sed 's/^single_ms=\([0-9.]*\).*/\1/')
    RUSTCRYPTO_SINGLE=$(echo "$ARGON" | sed 's/.*rustcrypto_single_ms=\([0-9.]*\).*/\1/')
    ARGON_BACKEND=$(echo "$ARGON" | sed 's/.*backend=\([A-Za-z0-9]*\).*/\1/')
    echo "$(login_rate "$BASE" "$WORK/logins.txt") $(echo "$ARGON" | sed 's/.* rate=\([0-9.]*\).*/\1/')" >>"$WORK/login.rounds"
    echo "$(session_rate "$BASE") $(session_rate "http://127.0.0.1:$BARE_PORT")" >>"$WORK/session.rounds"
    if [ -n "$BA_BASE" ]; then
      BA_RATE=$(BENCH_LOGIN_PATH=/api/auth/sign-in/email login_rate "$BA_BASE" "$WORK/ba_logins.txt")
      echo "$(tail -1 "$WORK/login.rounds" | cut -d' ' -f1) $BA_RATE" >>"$WORK/ba.rounds"
    fi
  done
  read -r LOGIN_RATE ARGON_RATE LOGIN_RATIO LOGIN_ALL < <(median_round <"$WORK/login.rounds")
  read -r SESSION_RATE BARE_RATE SESSION_RATIO SESSION_ALL < <(median_round <"$WORK/session.rounds")
  if [ -s "$WORK/ba.rounds" ]; then
    read -r BA_OURS BA_RATE BA_RATIO BA_ALL < <(median_round <"$WORK/ba.rounds")
  fi

  echo "session p99 while logins saturate the CPU..." >&2
  BENCH_LIST="$WORK/logins.txt" wrk -t2 -c8 -d"$((SECS + 2))s" -s ops/bench/login.lua "$BASE" >/dev/null 2>>"$WORK/wrk.err" &
  LOAD=$!
  sleep 1
  P99=$(wrk -t1 -c4 -d"${SECS}s" --latency -H "X-Project-Key: $PK" -H "Authorization: Bearer $AT" "$BASE/v1/auth/session" | wrk_p99)
  wait "$LOAD" || true

  echo "memory after $SIGNINS sign-ins..." >&2
  python3 - "$BASE" "$PK" "$SIGNINS" "$BENCH_USERS" <<'PY'
import json, sys, threading, urllib.request, urllib.error
base, pk, n, users = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
left = [n]
lock = threading.Lock()
def work():
    while True:
        with lock:
            if left[0] <= 0: return
            left[0] -= 1
            i = left[0] % users
        body = json.dumps({"email": f"bench{i}@example.com", "password": "correct horse battery staple"}).encode()
        req = urllib.request.Request(base + "/v1/auth/login", data=body, method="POST",
            headers={"Content-Type": "application/json", "X-Project-Key": pk})
        try:
            urllib.request.urlopen(req).read()
        except urllib.error.HTTPError as e:
            sys.stderr.write(f"sign-in answered {e.code}\n")
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
PY
  RSS_AFTER=$(rss_mib "$IDENTITY_PID")
  kill "$IDENTITY_PID"; wait "$IDENTITY_PID" 2>/dev/null || true
fi

# ---- Postgres: refresh against pgbench on the same server ----
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
REFRESH_RATE="" PGBENCH_RATE=""
if { part refresh || part many; } && [ -n "$PGBIN" ] && command -v pgbench >/dev/null && id postgres >/dev/null 2>&1; then
  echo "refresh on Postgres, and pgbench..." >&2
  mkdir -p "$WORK/pg" && chown postgres "$WORK/pg"
  PGPORT=$(free_port)
  runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/pg/data" -U postgres --auth=trust --no-sync >/dev/null
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" -w \
    -o "-p $PGPORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
  psql_() { "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -qAt "$@"; }
  psql_ -c "CREATE DATABASE identity" -c "CREATE DATABASE pgbench" postgres
  if part refresh; then
    start_identity "postgres://postgres@127.0.0.1:$PGPORT/identity"
    new_project
    export BENCH_PK=$PK
    pgbench -h 127.0.0.1 -p "$PGPORT" -U postgres -i -q -s 10 pgbench >/dev/null 2>&1
    printf '\\set aid random(1, 1000000)\nUPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;\n' >"$WORK/update.sql"
    # Refresh and pgbench back to back in each round, on the same server;
    # identity sits idle while pgbench runs. Every round starts 16 new
    # chains (a token presented twice would be reuse).
    # pgbench -i leaves its tables analysed; identity's get the same: a
    # warm-up run fills them, then ANALYZE (autovacuum would, a minute or
    # so later). Plans cached while a table was nearly empty scan it whole;
    # ANALYZE invalidates them.
    : >"$WORK/tokens"
    for i in $(seq 1 16); do
      public /v1/auth/register "{\"email\":\"warm$i@example.com\",\"password\":\"correct horse battery staple\"}" \
        | json 'd["refresh_token"]' >>"$WORK/tokens"
    done
    BENCH_TOKENS="$WORK/tokens" wrk -t16 -c16 -d3s -s ops/bench/refresh.lua "$BASE/v1/auth/refresh" >/dev/null 2>>"$WORK/wrk.err"
    psql_ -c "ANALYZE" identity
    : >"$WORK/refresh.rounds"
    for round in $(seq 1 "$ROUNDS"); do
      echo "refresh round $round of $ROUNDS..." >&2
      : >"$WORK/tokens"
      for i in $(seq 1 16); do
        public /v1/auth/register "{\"email\":\"r$round-$i@example.com\",\"password\":\"correct horse battery staple\"}" \
          | json 'd["refresh_token"]' >>"$WORK/tokens"
      done
      OURS=$(BENCH_TOKENS="$WORK/tokens" wrk -t16 -c16 -d"${SECS}s" -s ops/bench/refresh.lua "$BASE/v1/auth/refresh" 2>>"$WORK/wrk.err" | ok_rate)
      PGB=$(pgbench -h 127.0.0.1 -p "$PGPORT" -U postgres -n -c16 -j2 -T"$SECS" -f "$WORK/update.sql" pgbench 2>/dev/null \
        | awk '/^tps/ {print $3; exit}')
      echo "$OURS $PGB" >>"$WORK/refresh.rounds"
    done
    kill "$IDENTITY_PID"; wait "$IDENTITY_PID" 2>/dev/null || true
    read -r REFRESH_RATE PGBENCH_RATE REFRESH_RATIO REFRESH_ALL < <(median_round <"$WORK/refresh.rounds")
  fi

  if part many; then
    # Many projects against one (after pgbench, which runs on the server as
    # the refresh run left it): the same 2,000 live sessions, in one project
    # of 2,000 users (side A) or spread over 2,000 of 10,000 projects of 10
    # users each (side B); session checks cycle through every session, logins
    # through every signed-in account.
    # Both sides run at once and are measured in alternation, round by round.
    PHC=$("$BIN/bare-argon2" --phc "correct horse battery staple")
    declare -A SIDE_BASE SIDE_PID
    for side in a b; do
      if [ "$side" = a ]; then projects=1; users=$MANY_SESSIONS; else projects=$MANY_PROJECTS; users=10; fi
      echo "many projects, side $side: $projects project(s) x $users users..." >&2
      psql_ -c "CREATE DATABASE many_$side" postgres
      start_identity "postgres://postgres@127.0.0.1:$PGPORT/many_$side"
      SIDE_BASE[$side]=$BASE; SIDE_PID[$side]=$IDENTITY_PID
      mkdir -p "$WORK/many_$side"
      python3 ops/bench/many.py "$ADMIN" "$BASE" "$OP" "$projects" "$users" "$MANY_SESSIONS" "$PHC" "$WORK/many_$side"
    done
    : >"$WORK/many_rate.rounds"; : >"$WORK/many_p99.rounds"; : >"$WORK/many_login.rounds"
    for round in $(seq 1 "$ROUNDS"); do
      echo "many projects, round $round of $ROUNDS..." >&2
      declare -A RATE P99 LOGINS
      for side in b a; do
        BASE=${SIDE_BASE[$side]}
        OUT=$(BENCH_LIST="$WORK/many_$side/sessions.txt" wrk -t1 -c32 -d"${SECS}s" --latency -s ops/bench/many_session.lua "$BASE/v1/auth/session" 2>>"$WORK/wrk.err")
        RATE[$side]=$(echo "$OUT" | ok_rate)
        P99[$side]=$(echo "$OUT" | wrk_p99)
        LOGINS[$side]=$(login_rate "$BASE" "$WORK/many_$side/logins.txt")
      done
      echo "${RATE[b]} ${RATE[a]}" >>"$WORK/many_rate.rounds"
      # p99 is better when lower: the ratio is taken the other way round.
      echo "${P99[a]} ${P99[b]}" >>"$WORK/many_p99.rounds"
      echo "${LOGINS[b]} ${LOGINS[a]}" >>"$WORK/many_login.rounds"
    done
    kill "${SIDE_PID[a]}" "${SIDE_PID[b]}"; wait "${SIDE_PID[a]}" "${SIDE_PID[b]}" 2>/dev/null || true
    read -r MANY_RATE_b MANY_RATE_a MANY_RATE_RATIO MANY_RATE_ALL < <(median_round <"$WORK/many_rate.rounds")
    read -r MANY_P99_a MANY_P99_b _ _ < <(median_round <"$WORK/many_p99.rounds")
    read -r MANY_LOGIN_b MANY_LOGIN_a MANY_LOGIN_RATIO MANY_LOGIN_ALL < <(median_round <"$WORK/many_login.rounds")
  fi

fi

# ---- report ----
echo
echo "identity performance, $(date -u +%Y-%m-%dT%H:%MZ), $CORES cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
printf '%-58s %s\n' "figure" "value (yardstick, ratio)"
if part sqlite; then
  printf '%-58s %s\n' "login rate / bare Argon2id on all cores (median round)" "$LOGIN_RATE/s ($ARGON_RATE/s) = $LOGIN_RATIO; rounds $LOGIN_ALL"
  printf '%-58s %s\n' "  one Argon2id hash: argon2-rust ($ARGON_BACKEND) / RustCrypto" "$ARGON_SINGLE ms / $RUSTCRYPTO_SINGLE ms"
  if [ -n "${BA_RATIO:-}" ]; then
    printf '%-58s %s\n' "login rate / better-auth (Node), same Argon2id parameters" "$BA_OURS/s ($BA_RATE/s) = $BA_RATIO; rounds $BA_ALL"
  else
    printf '%-58s %s\n' "login rate / better-auth (Node), same Argon2id parameters" "not measured (node and npm are needed)"
  fi
  printf '%-58s %s\n' "GET /v1/auth/session / bare axum, same bytes (wrk -t1 -c32)" "$SESSION_RATE/s ($BARE_RATE/s) = $SESSION_RATIO; rounds $SESSION_ALL"
  printf '%-58s %s\n' "session p99 while logins saturate the CPU" "${P99} ms"
  printf '%-58s %s\n' "resident memory: idle / after $SIGNINS sign-ins" "$IDLE_RSS MiB / $RSS_AFTER MiB"
  printf '%-58s %s\n' "cold start to first /readyz 200 (SQLite, new database)" "$COLD_MS ms"
fi
if [ -n "$REFRESH_RATE" ]; then
  printf '%-58s %s\n' "refresh on Postgres (16 chains) / pgbench single-row UPDATE" "$REFRESH_RATE/s (${PGBENCH_RATE} tps) = $REFRESH_RATIO; rounds $REFRESH_ALL"
fi
if [ -n "${MANY_RATE_RATIO:-}" ]; then
  printf '%-58s %s\n' "$MANY_PROJECTS projects x 10 users / 1 x $MANY_SESSIONS users (Postgres):" ""
  printf '%-58s %s\n' "  session rate, $MANY_SESSIONS sessions (median round)" "$MANY_RATE_b/s / $MANY_RATE_a/s = $MANY_RATE_RATIO; rounds $MANY_RATE_ALL"
  printf '%-58s %s\n' "  session p99 (median round)" "$MANY_P99_b ms / $MANY_P99_a ms = $(ratio "$MANY_P99_b" "$MANY_P99_a")x"
  printf '%-58s %s\n' "  login rate (median round)" "$MANY_LOGIN_b/s / $MANY_LOGIN_a/s = $MANY_LOGIN_RATIO; rounds $MANY_LOGIN_ALL"
fi
if [ -s "$WORK/npm.err" ]; then
  echo; echo "npm errors (first lines):"; head -5 "$WORK/npm.err"
fi
if [ -s "$WORK/wrk.err" ]; then
  echo; echo "load-generator errors (first lines):"; head -5 "$WORK/wrk.err"
fi
