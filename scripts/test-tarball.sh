#!/usr/bin/env bash
# npm run test:tarball — the CLI package as a new user installs it (docs/installing.md, "npm"):
# npm pack, a global install into an empty prefix with the documented command, then every
# command from a folder that is not the clone: --help, token create, serve, register, export.
# Slow (better-sqlite3 compiles when no prebuilt binary can be downloaded); not part of npm test.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/ztp-tarball.XXXXXX)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}

step "npm pack"
t0=$(date +%s)
(cd "$root" && npm pack --silent --pack-destination "$work" >/dev/null)
tarball=$(ls "$work"/*.tgz)
echo "tarball: $(basename "$tarball"), $(stat -c %s "$tarball") bytes, $(tar tzf "$tarball" | wc -l) files"
tar tzf "$tarball" | grep -Eq '^package/(src|test|bench|scripts)/' && fail "the tarball holds sources or tests"

step "npm i -g --prefix <empty> --allow-scripts=better-sqlite3 <tarball>"
prefix="$work/prefix"
t1=$(date +%s)
# From an empty folder: no project package.json or .npmrc of the clone takes part.
mkdir -p "$work/elsewhere"
(cd "$work/elsewhere" && npm install -g --prefix "$prefix" --allow-scripts=better-sqlite3 "$tarball") \
  >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "npm install -g failed"; }
grep -v '^$' "$work/install.log" || true
if grep -q 'EBADENGINE\|not yet covered by allowScripts' "$work/install.log"; then
  fail "the install warned of an unsupported engine or an unreviewed install script"
fi
echo "no EBADENGINE, no unreviewed install script"
echo "installed in $(($(date +%s) - t1)) s; $(du -sh "$prefix" | cut -f1) on disk"
export PATH="$prefix/bin:$PATH"
[ "$(command -v ztp)" = "$prefix/bin/ztp" ] || fail "ztp is not on the PATH from the prefix"

cd "$work/elsewhere"
step "ztp --help (from $PWD)"
ztp --help | head -3
ztp serve --help >/dev/null

step "ztp token create"
ztp token create --role admin --name alice --tokens-file ./tokens >"$work/token.out"
grep -q '^admin:alice:' tokens || fail "the tokens file has no admin line"
token=$(grep -o 'ztp_[A-Za-z0-9_-]*' "$work/token.out" | head -1)
[ -n "$token" ] || fail "no token printed"

step "ztp serve (SQLite in $PWD)"
ztp serve --port 0 --host 127.0.0.1 --database ./ztp.db --tokens-file ./tokens >"$work/serve.log" 2>&1 &
server_pid=$!
url=
for _ in $(seq 1 300); do
  url=$(grep -o '"url":"[^"]*"' "$work/serve.log" | head -1 | cut -d'"' -f4 || true)
  [ -n "$url" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log"; fail "ztp serve exited"; }
  sleep 0.1
done
[ -n "$url" ] || fail "ztp serve did not start"
echo "listening at $url"
curl -fsS "$url/readyz" >/dev/null || fail "/readyz is not 200"

step "ztp register"
ztp register --server "$url" --id aa:bb:cc:00:00:01 --ip 192.0.2.1 --token "$token" --wait 0

step "ztp export"
kill -TERM "$server_pid" && wait "$server_pid" || true
server_pid=
ztp export --database ./ztp.db | grep -q '"id":"aa:bb:cc:00:00:01"' || fail "the device is not in the export"
echo "exported the registered device"

printf '\nPASS tarball: %s bytes; pack+install %s s\n' "$(stat -c %s "$tarball")" "$(($(date +%s) - t0))"
