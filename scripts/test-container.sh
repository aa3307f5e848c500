#!/usr/bin/env bash
# npm run test:container — the image and deploy/compose.yaml, run for real with podman (or
# CONTAINER_ENGINE=docker with COMPOSE="docker compose"):
#   1. builds the image (build time, image size);
#   2. runs it with SQLite on a volume: /readyz, the healthcheck, non-root, the console and the sh
#      client served, a registration; kill -9; a new container on the same volume still has the
#      device; SIGTERM drains and exits 0;
#   3. bad input: a wrong database URL, a malformed one, an unwritable /data, no database secret
#      for compose: each exits non-zero with one line naming the problem and no stack trace;
#   4. deploy/compose.yaml: PostgreSQL + two replicas behind one published port; a device
#      registered through each replica is seen by the other, and through the published port.
# Slow (an image build); not part of npm test or .ci/run.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
engine=${CONTAINER_ENGINE:-podman}
compose=${COMPOSE:-podman-compose}
image=${ZTP_IMAGE:-localhost/ztp:latest}
run_id=ztpt$$
work=$(mktemp -d /tmp/ztp-container.XXXXXX)
passed=0

cleanup() {
  set +e
  "$engine" rm -f -t 0 "$run_id-a" "$run_id-b" "$run_id-c" >/dev/null 2>&1
  "$engine" volume rm -f "$run_id-data" >/dev/null 2>&1
  if [ -f "$work/compose-up" ]; then
    (cd "$root/deploy" && ZTP_DB_PASSWORD=x "$compose" -p "$run_id" down -t 2 >/dev/null 2>&1)
    "$engine" volume rm -f "${run_id}_pgdata" >/dev/null 2>&1
    "$engine" network rm -f "${run_id}_default" >/dev/null 2>&1
    # podman-compose 1.0.3 leaves the image's anonymous /data volumes behind.
    "$engine" volume prune -f >/dev/null 2>&1
  fi
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
ok() {
  passed=$((passed + 1))
  printf 'ok %d - %s\n' "$passed" "$*"
}
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
# Waits until GET $1 answers 200 (up to $2 seconds).
wait_ready() {
  local deadline=$(($(date +%s) + $2))
  until curl -fs -o /dev/null "$1"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}
# Runs the image with bad input: exit status, and stderr must be one line without a stack trace.
expect_one_line_failure() {
  local what=$1 pattern=$2
  shift 2
  local status=0
  # --no-healthcheck: without systemd, podman itself writes errors about the healthcheck timer.
  timeout 60 "$engine" run --rm --no-healthcheck "$@" "$image" >"$work/out" 2>"$work/err" || status=$?
  local lines
  lines=$(grep -c . "$work/err" || true)
  [ "$status" -ne 0 ] || fail "$what: exited 0"
  [ "$lines" -eq 1 ] || { cat "$work/err"; fail "$what: $lines lines on stderr, wanted 1"; }
  grep -q '^    at ' "$work/err" && fail "$what: a stack trace"
  grep -Eq "$pattern" "$work/err" || { cat "$work/err"; fail "$what: does not say /$pattern/"; }
  ok "$what: exit $status, \"$(cat "$work/err")\""
}

step "build $image"
t0=$(date +%s)
# podman's default OCI image format has no HEALTHCHECK: build in docker format (docker's default).
format=()
[ "$engine" = podman ] && format=(--format docker)
"$engine" build -q "${format[@]}" -t "$image" "$root" >/dev/null
build_s=$(($(date +%s) - t0))
size=$("$engine" image inspect --format '{{.Size}}' "$image")
ok "built in ${build_s} s; image size $((size / 1000000)) MB ($size bytes)"

step "one container, SQLite on the volume /data"
port=$(free_port)
"$engine" volume create "$run_id-data" >/dev/null
"$engine" run -d --name "$run_id-a" -p "127.0.0.1:$port:8080" -v "$run_id-data:/data" "$image" >/dev/null
S=http://127.0.0.1:$port
wait_ready "$S/readyz" 60 || { "$engine" logs "$run_id-a"; fail "/readyz never answered 200"; }
ok "/readyz 200"
[ "$("$engine" exec "$run_id-a" id -u)" = 1000 ] || fail "the server does not run as uid 1000"
ok "runs as uid 1000 (node)"
"$engine" healthcheck run "$run_id-a" >/dev/null || fail "the HEALTHCHECK failed"
ok "HEALTHCHECK passes"
# Into files first: with pipefail, `curl | head` fails when head closes the pipe early.
curl -fsS -o "$work/client.sh" "$S/ztp/client.sh" && head -1 "$work/client.sh" | grep -q '^#!/bin/sh' ||
  fail "/ztp/client.sh is not served"
curl -fsS -o "$work/console.html" "$S/" && grep -qi '<html' "$work/console.html" || fail "the console is not served"
ok "the sh client and the console are served"
code=$(curl -sS -o "$work/reg" -w '%{http_code}' -X PUT "$S/ztp/register/aa:bb:cc:dd:ee:01" \
  -H 'content-type: application/json' -d '{"ip":"192.0.2.10","name":"sw-1"}')
[ "$code" = 201 ] || fail "register answered $code: $(cat "$work/reg")"
"$engine" exec "$run_id-a" ztp register --server http://127.0.0.1:8080 --id aa:bb:cc:dd:ee:02 \
  --ip 192.0.2.11 --wait 10 >/dev/null || fail "ztp register inside the container failed"
ok "registered two devices (curl from the host, ztp register inside the container)"

"$engine" kill -s KILL "$run_id-a" >/dev/null
"$engine" rm -f "$run_id-a" >/dev/null
"$engine" run -d --name "$run_id-b" -p "127.0.0.1:$port:8080" -v "$run_id-data:/data" "$image" >/dev/null
wait_ready "$S/readyz" 60 || { "$engine" logs "$run_id-b"; fail "the second container never became ready"; }
curl -fsS "$S/ztp/check/aa:bb:cc:dd:ee:01" | grep -q '"ip":"192.0.2.10"' || fail "the device did not survive"
curl -fsS "$S/ztp/check/aa:bb:cc:dd:ee:02" | grep -q '"ip":"192.0.2.11"' || fail "the device did not survive"
ok "after kill -9, a new container on the volume has both devices"

t1=$(date +%s%N)
"$engine" stop -t 20 "$run_id-b" >/dev/null
stop_ms=$((($(date +%s%N) - t1) / 1000000))
status=$("$engine" inspect --format '{{.State.ExitCode}}' "$run_id-b")
[ "$status" = 0 ] || fail "SIGTERM: exit status $status"
"$engine" logs "$run_id-b" >"$work/logs" 2>&1
grep -q '"signal":"SIGTERM"' "$work/logs" || fail "SIGTERM was not handled"
[ "$stop_ms" -lt 10000 ] || fail "SIGTERM took $stop_ms ms"
ok "SIGTERM drains and exits 0 in $stop_ms ms"

step "bad input"
expect_one_line_failure "database refusing connections" 'cannot connect to PostgreSQL' \
  -e ZTP_DATABASE=postgres://ztp:secret@127.0.0.1:1/ztp
expect_one_line_failure "database host unknown" 'cannot connect to PostgreSQL.*ENOTFOUND' \
  -e ZTP_DATABASE=postgres://ztp:secret@no-such-host.invalid/ztp
expect_one_line_failure "malformed database URL" 'not a valid URL' \
  -e 'ZTP_DATABASE=postgres://ztp:secret@[db/ztp'
grep -q secret "$work/err" && fail "the password was printed"
mkdir -p "$work/root-owned" && chmod 755 "$work/root-owned"
expect_one_line_failure "unwritable /data" "directory '/data' is not writable by uid 1000" \
  -v "$work/root-owned:/data"
status=0
(cd "$root/deploy" && env -u ZTP_DB_PASSWORD "$compose" -p "$run_id" ps) >"$work/out" 2>"$work/err" || status=$?
[ "$status" -ne 0 ] && grep -q 'ZTP_DB_PASSWORD' "$work/err" || {
  cat "$work/err"
  fail "compose without ZTP_DB_PASSWORD did not refuse"
}
ok "compose without the database secret refuses: \"$(grep ZTP_DB_PASSWORD "$work/err" | head -1)\""

step "deploy/compose.yaml: PostgreSQL + two replicas"
cport=$(free_port)
export ZTP_DB_PASSWORD
ZTP_DB_PASSWORD=$(node -e "console.log(require('crypto').randomBytes(16).toString('hex'))")
export ZTP_PUBLISH=127.0.0.1:$cport
touch "$work/compose-up"
(cd "$root/deploy" && "$compose" -p "$run_id" up -d) >"$work/compose.log" 2>&1 ||
  { cat "$work/compose.log"; fail "compose up failed"; }
C=http://127.0.0.1:$cport
# The replicas exit while PostgreSQL is still starting and are restarted (podman-compose 1.0.3
# ignores depends_on conditions): both must end up ready.
in_replica() { "$engine" exec "${run_id}_$1_1" "${@:2}"; }
ready_in() {
  in_replica "$1" node -e "fetch('http://127.0.0.1:8080/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
}
deadline=$(($(date +%s) + 120))
until ready_in ztp-1 2>/dev/null && ready_in ztp-2 2>/dev/null && curl -fs -o /dev/null "$C/readyz"; do
  [ "$(date +%s)" -lt "$deadline" ] || {
    "$engine" logs "${run_id}_ztp-1_1" 2>&1 | tail -5
    fail "the replicas never became ready"
  }
  sleep 1
done
ok "both replicas and the published port ready on PostgreSQL"
in_replica ztp-1 ztp register --server http://127.0.0.1:8080 --id 02:00:00:00:00:01 --ip 198.51.100.1 --wait 10 >/dev/null
in_replica ztp-2 ztp register --server http://127.0.0.1:8080 --id 02:00:00:00:00:02 --ip 198.51.100.2 --wait 10 >/dev/null
check_in() {
  in_replica "$1" node -e "fetch('http://127.0.0.1:8080/ztp/check/$2').then((r) => r.text()).then((t) => console.log(t))"
}
check_in ztp-2 02:00:00:00:00:01 | grep -q '"ip":"198.51.100.1"' || fail "replica 2 does not see replica 1's device"
check_in ztp-1 02:00:00:00:00:02 | grep -q '"ip":"198.51.100.2"' || fail "replica 1 does not see replica 2's device"
ok "a device registered through each replica is seen by the other"
for id in 02:00:00:00:00:01 02:00:00:00:00:02; do
  curl -fsS "$C/ztp/check/$id" >/dev/null || fail "$id not found through the published port"
done
code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT "$C/ztp/register/02:00:00:00:00:03" \
  -H 'content-type: application/json' -d '{"ip":"198.51.100.3"}')
[ "$code" = 201 ] || fail "register through the published port answered $code"
ok "register and check through the published port"
"$engine" logs "${run_id}_ztp-1_1" >"$work/logs" 2>&1
"$engine" logs "${run_id}_ztp-2_1" >>"$work/logs" 2>&1
grep -q 'database":"postgres://ztp:\*\*\*@postgres' "$work/logs" ||
  fail "the replicas' logs do not show the redacted database URL"
grep -q "$ZTP_DB_PASSWORD" "$work/logs" && fail "the database password is in the logs"
ok "the logs show the database as postgres://ztp:***@postgres..., never the password"

printf '\nPASS test:container: %d checks; build %s s; image %s MB\n' "$passed" "$build_s" "$((size / 1000000))"
