#!/bin/sh
# Production smoke test (ops/production-checklist.md): through a verified
# auth domain, as a browser would, with curl and a cookie jar.
#   ops/smoke-test.sh https://auth.example.com [extra curl arguments...]
set -eu
BASE="$1"
shift
JAR="$(mktemp)"
trap 'rm -f "$JAR"' EXIT
EMAIL="smoke-$(date +%s)-$$@example.com"

# 1. Register: the session arrives as cookies.
curl -fsS "$@" -c "$JAR" -b "$JAR" -H 'Content-Type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"smoke-test-password\"}" \
  "$BASE/v1/auth/register" >/dev/null
# 2. The session is live.
code=$(curl -s "$@" -o /dev/null -w '%{http_code}' -b "$JAR" "$BASE/v1/auth/session")
[ "$code" = 200 ] || { echo "session after register: $code (expected 200)"; exit 1; }
# 3. Log out. The jar keeps its cookies: step 4 proves the server revoked
#    the session, not merely that the browser forgot it.
code=$(curl -s "$@" -o /dev/null -w '%{http_code}' -b "$JAR" -X POST "$BASE/v1/auth/logout")
[ "$code" = 204 ] || { echo "logout: $code (expected 204)"; exit 1; }
# 4. The same cookies no longer work.
code=$(curl -s "$@" -o /dev/null -w '%{http_code}' -b "$JAR" "$BASE/v1/auth/session")
[ "$code" = 401 ] || { echo "session after logout: $code (expected 401)"; exit 1; }
echo "smoke test passed"
