#!/bin/sh
# ztp device client, POSIX sh: for devices without Node.js. The ztp server serves it at
# GET /ztp/client.sh with its own URL filled in, so on a Linux box
#
#     curl -fsS http://server:8080/ztp/client.sh | sh
#     curl -fsS http://server:8080/ztp/client.sh | sh -s -- --name sw1 --wait 60s
#
# registers the device. Same options, environment variables, output and exit codes as
# `ztp register`; run with --help for the list. Needs: curl (or GNU wget, or BusyBox wget
# alone: then it registers by POST with a form body), ip (iproute2 or busybox), awk, sed, tr, od. Everything runs inside main(), called on the last line, so the
# whole script is read before anything runs (safe to pipe into sh).
# This file is the source of src/client/shell-script.ts (npm run gen:client-sh).

ZTP_SERVED_FROM='@@ZTP_SERVER@@'
ZTP_CLIENT_VERSION=0.1.0
ME=ztp-client.sh
NL='
'

usage() {
  cat <<'EOF'
Usage: sh ztp-client.sh [--server URL] [options]
       sh ztp-client.sh report TYPE [MESSAGE] [--server URL] [options]
       curl -fsS http://SERVER/ztp/client.sh | sh -s -- [options]

Registers this device with a ztp server: PUT {server}/ztp/register/{id} with its ip, and its
name and userdata when given (with BusyBox wget alone: POST with a form body). Run it at every
boot. Flags win over environment variables.
With `report`, sends a progress report instead: POST {server}/ztp/report/{id} with TYPE (an
RFC 8572 progress type, e.g. bootstrap-complete, bootstrap-error) and an optional MESSAGE of
at most 1024 bytes.

Options:
  --server URL  (env ZTP_SERVER; default: the server this script was fetched from)
  --id-source SRC  (env ZTP_ID_SOURCE, default mac)
      mac (the interface that routes to the server), machine-id, cpu (CPU serial), dmi-uuid.
  --id ID  (env ZTP_ID)            Use this device id instead of detecting one.
  --ip IP  (env ZTP_IP)            Address to register. Default: the local source address.
  --name NAME  (env ZTP_NAME)      Device name. Sent only when given: otherwise the stored
      name is left as it is.
  --userdata TEXT  (env ZTP_USERDATA)  Free text, at most 64 KiB. Sent only when given (this
      or --userdata-file).
  --userdata-file PATH  (env ZTP_USERDATA_FILE)  Read userdata from a file.
  --token TOKEN  (env ZTP_TOKEN)   Bearer token (Authorization: Bearer TOKEN; as ?token=TOKEN
      with a BusyBox wget that cannot send headers).
  --token-file PATH  (env ZTP_TOKEN_FILE)  Read the bearer token from a file.
  --ca-file PATH  (env ZTP_CA_FILE)  PEM CA certificate(s) for an https server.
  --cert-file PATH  (env ZTP_CERT_FILE)  PEM client certificate for mutual TLS.
  --key-file PATH  (env ZTP_KEY_FILE)  PEM private key of --cert-file (unencrypted).
  --wait DURATION  (env ZTP_WAIT, default 5m)  Keep retrying an unreachable or busy server
      (connection errors, timeouts, 408, 429, 5xx) this long, e.g. 90s, 5m, 1h; 0 = one attempt.
  --timeout DURATION  (env ZTP_TIMEOUT, default 10s)  Timeout of one attempt; at least 100ms.
  --json      Print the registered record as JSON.
  --dry-run   Detect and print what would be sent; send nothing.
  --quiet     Do not print retry progress on standard error.
  --help      Show this help.

Exit codes:
  0  registered (or, with --dry-run, detected and printed)
  1  unexpected error
  2  usage error: bad option, unreadable file, id/name/userdata invalid or too large,
     no curl, GNU wget or BusyBox wget (or BusyBox wget with https)
  3  identity detection failed: the id source or the local address is unavailable
  4  the server rejected the registration (4xx other than 408/429, a redirect, or a refused
     client certificate)
  5  gave up waiting: the server stayed unreachable or busy for --wait
  6  the server TLS certificate is not trusted (see --ca-file)
EOF
}

say() { printf '%s\n' "$ME: $*" >&2; }
die() {
  die_code=$1
  shift
  say "$*"
  exit "$die_code"
}
usage_error() { die 2 "$*${NL}Run '$ME --help' for the options."; }

# JSON string body (without quotes) of standard input, byte for byte (trailing newlines kept).
json_escape() {
  { cat; printf x; } | LC_ALL=C awk '
    BEGIN { for (i = 1; i < 32; i++) m[sprintf("%c", i)] = sprintf("\\u%04x", i)
            m["\t"] = "\\t"; m["\r"] = "\\r"; m["\""] = "\\\""; m["\\"] = "\\\\"
            m["\b"] = "\\b"; m["\f"] = "\\f" }
    { s = ""; n = length($0)
      for (i = 1; i <= n; i++) { c = substr($0, i, 1); s = s ((c in m) ? m[c] : c) }
      out = (NR > 1) ? out "\\n" s : s }
    END { printf "%s", substr(out, 1, length(out) - 1) }'
}

# application/x-www-form-urlencoded text of standard input, byte for byte.
form_escape() {
  od -An -v -tx1 | LC_ALL=C awk '
    BEGIN { for (i = 0; i < 256; i++) b[sprintf("%02x", i)] = i }
    { for (i = 1; i <= NF; i++) { c = b[$i]
        if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) ||
          c == 45 || c == 46 || c == 95 || c == 126) printf "%c", c
        else printf "%%%s", toupper($i) } }'
}

# First string member $1 of the JSON object in file $2 (escapes left as they are).
json_field() {
  sed -n -E 's/.*"'"$1"'":"(([^"\\]|\\.)*)".*/\1/p' "$2" | head -n 1
}

# "500ms", "30s", "1.5s", "5m", "1h", "1d" or "0" -> milliseconds. A bare number is refused, as
# in `ztp register` and `ztp serve`.
to_ms() {
  case $2 in
    *[!0-9.]* | '' | .* | *.) ;;
    *)
      case $2 in *[!0.]*) usage_error "--$1: '$2' has no unit: write e.g. ${2}s for seconds or ${2}ms for milliseconds (units: ms, s, m, h, d)" ;; esac
      ;;
  esac
  to_ms_v=$(printf '%s\n' "$2" | LC_ALL=C awk '
    NR == 1 && /^0+(\.0+)?$/ { print 0; exit }
    NR == 1 && /^[0-9]+(\.[0-9]+)?(ms|s|m|h|d)$/ {
      u = 1000; v = $0
      if (v ~ /ms$/) { u = 1; sub(/ms$/, "", v) }
      else if (v ~ /s$/) { sub(/s$/, "", v) }
      else if (v ~ /m$/) { u = 60000; sub(/m$/, "", v) }
      else if (v ~ /h$/) { u = 3600000; sub(/h$/, "", v) }
      else if (v ~ /d$/) { u = 86400000; sub(/d$/, "", v) }
      printf "%d\n", v * u + 0.5 }')
  [ -n "$to_ms_v" ] || usage_error "--$1: '$2' is not a duration (use e.g. 500ms, 10s, 5m, 24h, 7d)"
  printf '%s\n' "$to_ms_v"
}

secs() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }

sleep_ms() {
  sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))" 2>/dev/null || sleep $((($1 + 999) / 1000))
}

rand16() { od -An -N2 -tu2 /dev/urandom 2>/dev/null | tr -d ' \n' || echo 32768; }

# Milliseconds since the epoch (whole seconds where date has no %N).
now_ms() {
  nm=$(date +%s%N 2>/dev/null)
  case $nm in '' | *[!0-9]*) echo $(($(date +%s) * 1000)) ;; *) echo "${nm%??????}" ;; esac
}

# ---------------------------------------------------------------------------------------------
# Identity

# Canonical id: MACs in colon, hyphen, dotted or bare 12-hex notation become aa:bb:cc:dd:ee:ff;
# other ids must be 1-128 of [A-Za-z0-9._:-], not a reserved word and not only dots (HTTP
# clients collapse such path segments). Prints it, or fails with the reason.
canonical_id() {
  case $1 in *"$NL"*) echo 'device id must not contain a newline'; return 1 ;; esac
  ci_lc=$(printf '%s' "$1" | tr 'A-F' 'a-f')
  if printf '%s\n' "$ci_lc" | grep -Eqx '([0-9a-f]{2}:){5}[0-9a-f]{2}|([0-9a-f]{2}-){5}[0-9a-f]{2}'; then
    printf '%s\n' "$ci_lc" | tr '-' ':'
  elif printf '%s\n' "$ci_lc" | grep -Eqx '[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}|[0-9a-f]{12}'; then
    printf '%s\n' "$ci_lc" | tr -d . | sed 's/\(..\)/\1:/g; s/:$//'
  elif printf '%s\n' "$1" | grep -Eqx '\.+'; then
    echo "'$1' is only dots and cannot be a device id"
    return 1
  elif printf '%s\n' "$1" | grep -Eqx '[A-Za-z0-9._:-]{1,128}'; then
    case $(printf '%s' "$1" | tr 'A-Z' 'a-z') in
      list | triggers | events | stats | devices)
        echo "'$1' is a reserved path word and cannot be a device id"
        return 1
        ;;
    esac
    printf '%s\n' "$1"
  else
    echo 'device id must be a MAC address or 1-128 characters of A-Z a-z 0-9 . _ : -'
    return 1
  fi
}

# Sets mac_why to why the MAC of interface $1 cannot identify the device (empty: it can) and
# mac_of to the MAC.
mac_problem() {
  mac_of= mac_why=
  if [ ! -r "/sys/class/net/$1/address" ]; then mac_why="$1: no such interface"; return; fi
  mp_flags=$(cat "/sys/class/net/$1/flags" 2>/dev/null)
  case ${mp_flags:-0x0} in *[89aAbBcCdDeEfF]) mac_why="$1: loopback interface"; return ;; esac
  mac_of=$(tr 'A-F' 'a-f' <"/sys/class/net/$1/address")
  case $mac_of in
    00:00:00:00:00:00) mac_why="$1: all-zero address (no hardware address)" ;;
    ff:ff:ff:ff:ff:ff) mac_why="$1: broadcast address" ;;
    ?[13579bdf]:*) mac_why="$1: multicast address" ;;
    ??:??:??:??:??:??)
      if [ "$(cat "/sys/class/net/$1/addr_assign_type" 2>/dev/null)" = 1 ]; then
        mac_why="$1: randomly generated address (addr_assign_type 1)"
      fi
      ;;
    *) mac_why="$1: '$mac_of' is not a MAC address" ;;
  esac
}

# Default-route interfaces, IPv4 then IPv6, lowest metric first (as the Node client).
default_ifaces() {
  {
    LC_ALL=C awk 'NR > 1 && $2 == "00000000" && $8 == "00000000" && $4 ~ /[13579bBdDfF]$/ &&
      $1 != "lo" { printf "%010d %s\n", $7, $1 }' /proc/net/route 2>/dev/null | sort | cut -d' ' -f2
    LC_ALL=C awk '$1 ~ /^0+$/ && length($1) == 32 && $2 == "00" && $9 ~ /[13579bBdDfF]$/ &&
      substr($9, 6, 1) ~ /[014589cdCD]/ && $10 != "lo" { print $6, $10 }' /proc/net/ipv6_route \
      2>/dev/null | sort | cut -d' ' -f2
  } | awk '!seen[$0]++'
}

# Sets id and id_how from the MAC for source address $1 reached through device $2; or fails
# (identity error) with the reason in id_error.
detect_mac() {
  case $1 in 127.* | ::1 | ::ffff:127.*) dm_loop=1 ;; *) dm_loop= ;; esac
  [ "$2" = lo ] && dm_loop=1
  if [ -z "$dm_loop" ]; then
    mac_problem "$2"
    if [ -z "$mac_why" ]; then
      id=$mac_of id_how="mac of $2 (route to the server)"
      return 0
    fi
    id_error="the interface that carries the route to the server has no usable MAC address ($mac_why)"
    return 1
  fi
  dm_tried=
  for dm_if in $(default_ifaces); do
    mac_problem "$dm_if"
    if [ -z "$mac_why" ]; then
      id=$mac_of id_how="mac of $dm_if (default route; the server is on loopback)"
      return 0
    fi
    dm_tried="$dm_tried${dm_tried:+; }$mac_why"
  done
  [ -n "$dm_tried" ] || dm_tried='no default route in /proc/net/route or /proc/net/ipv6_route'
  id_error="the server is on loopback and no default-route interface has a usable MAC address; tried: $dm_tried"
  return 1
}

file_reason() {
  if [ ! -e "$1" ]; then echo 'not present'; elif [ ! -r "$1" ]; then echo 'permission denied (needs root)'; else echo 'unreadable'; fi
}

# Sets id and id_how from a non-network source, or exits 3 naming what was tried.
detect_file_id() {
  fi_tried=
  case $1 in
    machine-id)
      for fi_path in /etc/machine-id /var/lib/dbus/machine-id; do
        if ! fi_v=$(cat "$fi_path" 2>/dev/null); then
          fi_tried="$fi_tried${fi_tried:+; }$fi_path: $(file_reason "$fi_path")"
          continue
        fi
        fi_v=$(printf '%s' "$fi_v" | tr -d ' \t\r\n')
        if printf '%s\n' "$fi_v" | grep -Eqx '[0-9a-fA-F]{32}' && ! printf '%s\n' "$fi_v" | grep -qx '0*'; then
          id=$(printf '%s' "$fi_v" | tr 'A-F' 'a-f') id_how="machine-id from $fi_path"
          return 0
        fi
        case $fi_v in
          '') fi_why=empty ;; uninitialized) fi_why='uninitialized (first boot)' ;; *) fi_why='not 32 hex digits' ;;
        esac
        fi_tried="$fi_tried${fi_tried:+; }$fi_path: $fi_why"
      done
      die 3 "cannot find the machine-id id: no machine-id found; tried: $fi_tried"
      ;;
    cpu)
      if [ -r /proc/cpuinfo ]; then
        fi_v=$(sed -n 's/^Serial[[:space:]]*:[[:space:]]*\([^[:space:]]*\)[[:space:]]*$/\1/p' /proc/cpuinfo | head -n 1)
        if [ -z "$fi_v" ]; then
          fi_tried='/proc/cpuinfo: no Serial line'
        elif printf '%s\n' "$fi_v" | grep -qx '0*'; then
          fi_tried='/proc/cpuinfo: Serial is all zeros'
        elif printf '%s\n' "$fi_v" | grep -Eqx '[A-Za-z0-9._:-]{1,128}'; then
          id=$fi_v id_how='cpu serial from /proc/cpuinfo'
          return 0
        else
          fi_tried="/proc/cpuinfo: Serial '$fi_v' is not a valid id"
        fi
      else
        fi_tried="/proc/cpuinfo: $(file_reason /proc/cpuinfo)"
      fi
      fi_path=/sys/firmware/devicetree/base/serial-number
      if fi_v=$(tr -d '\000' 2>/dev/null <"$fi_path"); then
        fi_v=$(printf '%s' "$fi_v" | tr -d ' \t\r\n')
        if [ -n "$fi_v" ] && ! printf '%s\n' "$fi_v" | grep -qx '0*' &&
          printf '%s\n' "$fi_v" | grep -Eqx '[A-Za-z0-9._:-]{1,128}'; then
          id=$fi_v id_how="cpu serial from $fi_path"
          return 0
        fi
        fi_tried="$fi_tried; $fi_path: ${fi_v:+'$fi_v' is not usable}${fi_v:-empty}"
      else
        fi_tried="$fi_tried; $fi_path: $(file_reason "$fi_path")"
      fi
      if grep -q '^flags.*[[:space:]]pn\([[:space:]]\|$\)' /proc/cpuinfo 2>/dev/null; then
        # Intel processor serial number: CPUID 1 EAX, then CPUID 3 EDX and ECX.
        fi_v=$({
          dd if=/dev/cpu/0/cpuid bs=16 count=1 skip=1 iflag=skip_bytes 2>/dev/null
          dd if=/dev/cpu/0/cpuid bs=16 count=1 skip=3 iflag=skip_bytes 2>/dev/null
        } | od -An -v -tx4 | tr -s ' \n' '  ' | awk 'NF == 8 { printf "%s%s%s", $1, $8, $7 }' | tr 'a-f' 'A-F' |
          sed 's/\(....\)/\1-/g; s/-$//')
        if [ -n "$fi_v" ]; then
          id=$fi_v id_how='x86 processor serial number (CPUID leaf 3)'
          return 0
        fi
        fi_tried="$fi_tried; /dev/cpu/0/cpuid: $(file_reason /dev/cpu/0/cpuid)"
      else
        fi_tried="$fi_tried; x86 processor serial number (CPUID leaf 3): not offered by this CPU (no pn flag)"
      fi
      die 3 "cannot find the cpu id: this platform exposes no CPU serial number; tried: $fi_tried"
      ;;
    dmi-uuid)
      fi_path=/sys/class/dmi/id/product_uuid
      fi_v=$(tr 'A-F' 'a-f' 2>/dev/null <"$fi_path" | tr -d ' \t\r\n') ||
        die 3 "cannot find the dmi-uuid id: no DMI product UUID; tried: $fi_path: $(file_reason "$fi_path")"
      [ -r "$fi_path" ] ||
        die 3 "cannot find the dmi-uuid id: no DMI product UUID; tried: $fi_path: $(file_reason "$fi_path")"
      printf '%s\n' "$fi_v" | grep -Eqx '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' ||
        die 3 "cannot find the dmi-uuid id: no DMI product UUID; tried: $fi_path: '$fi_v' is not a UUID"
      case $fi_v in
        00000000-0000-0000-0000-000000000000 | ffffffff-ffff-ffff-ffff-ffffffffffff | 03000200-0400-0500-0006-000700080009)
          die 3 "cannot find the dmi-uuid id: no DMI product UUID; tried: $fi_path: $fi_v is a firmware placeholder, not unique"
          ;;
      esac
      id=$fi_v id_how="DMI product UUID from $fi_path"
      ;;
  esac
}

# Sets src_ip and src_dev: the source address and device the kernel uses to reach host $1.
# Returns 1 (worth waiting: name not resolvable or no route yet) or 2 (cannot work here).
route_to() {
  src_ip= src_dev= route_error=
  command -v ip >/dev/null 2>&1 || {
    route_error="the 'ip' command (iproute2 or busybox) is needed to find the source address; give --ip and --id"
    return 2
  }
  if printf '%s\n' "$1" | grep -Eqx '[0-9]+(\.[0-9]+){3}|[0-9a-fA-F:.]*:[0-9a-fA-F:.]*'; then
    rt_addr=$1
  else
    if command -v getent >/dev/null 2>&1; then
      rt_addr=$(getent ahosts "$1" 2>/dev/null | awk 'NR == 1 { print $1 }')
    elif command -v nslookup >/dev/null 2>&1; then
      rt_addr=$(nslookup "$1" 2>/dev/null | awk '/^Name:/ { n = 1 } n && /^Address/ { sub(/^Address( [0-9]+)?:[ \t]*/, ""); print $1; exit }')
    else
      route_error="neither getent nor nslookup is available to resolve $1"
      return 2
    fi
    [ -n "$rt_addr" ] || {
      route_error="network not ready: cannot resolve $1"
      return 1
    }
  fi
  rt_line=$(ip route get "$rt_addr" 2>&1) || {
    route_error="network not ready: $(printf '%s' "$rt_line" | head -n 1)"
    return 1
  }
  src_ip=$(printf '%s\n' "$rt_line" | awk '{ for (i = 1; i < NF; i++) if ($i == "src") { print $(i + 1); exit } }')
  src_dev=$(printf '%s\n' "$rt_line" | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
  [ -n "$src_ip" ] || {
    route_error="network not ready: no source address for $rt_addr"
    return 1
  }
}

# ---------------------------------------------------------------------------------------------
# HTTP

# True (and a rejection) when $a_reason says the server refused our missing/unknown client cert.
client_cert_refused() {
  case $a_reason in
    *'alert certificate required'* | *'alert bad certificate'* | *'alert unknown ca'* | *'alert access denied'*)
      a_kind=rejected a_status=0
      a_reason="the server refused the TLS handshake ($(printf '%s' "$a_reason" | sed 's/.*\(alert [a-z ]*\).*/\1/')); mutual TLS needs --cert-file and --key-file from a CA it trusts"
      return 0
      ;;
  esac
  return 1
}

# Runs "$@" (BusyBox wget, which has no timeout option in every build) for at most $1 ms.
with_deadline() {
  wd_s=$((($1 + 999) / 1000))
  shift
  "$@" &
  wd_pid=$!
  (sleep "$wd_s" && kill "$wd_pid") </dev/null >/dev/null 2>&1 &
  wd_killer=$!
  wait "$wd_pid"
  wd_rc=$?
  kill "$wd_killer" 2>/dev/null
  return "$wd_rc"
}

# PUT $url with $tmp/req (BusyBox wget: POST). Sets a_kind (ok|retry|rejected|untrusted),
# a_status, a_reason, a_retry_after (seconds or empty), and leaves the answer in $tmp/body.
send() {
  : >"$tmp/body"
  : >"$tmp/headers"
  a_status= a_retry_after= s_rcode=
  if [ "$http_tool" = curl ]; then
    set -- -sS -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' -X "$method" \
      -H 'Content-Type: application/json' -H 'Accept: application/json, application/problem+json' \
      -A "ztp-client-sh/$ZTP_CLIENT_VERSION" --data-binary @"$tmp/req" \
      --max-time "$(secs "$1")" --connect-timeout "$(secs "$1")"
    [ -n "$token" ] && set -- "$@" -K "$tmp/auth"
    [ -n "$ca_file" ] && set -- "$@" --cacert "$ca_file"
    [ -n "$cert_file" ] && set -- "$@" --cert "$cert_file" --key "$key_file"
    a_status=$(curl "$@" "$url" </dev/null 2>"$tmp/err")
    s_rc=$?
    if [ "$s_rc" != 0 ]; then
      a_reason=$(head -n 1 "$tmp/err" | sed 's/^curl: ([0-9]*) //')
      [ -n "$a_reason" ] || a_reason="curl exit $s_rc"
      client_cert_refused && return
      case $s_rc in
        58) a_kind=usage ;;
        51 | 60 | 83 | 90 | 91)
          case $a_reason in
            *'not yet valid'*) a_kind=retry a_reason="$a_reason (is the clock set? waiting for time sync)" ;;
            *) a_kind=untrusted ;;
          esac
          ;;
        *) a_kind=retry ;;
      esac
      return
    fi
  elif [ "$http_tool" = wget ]; then
    set -- -nv -S -O "$tmp/body" --method="$method" --body-file="$tmp/req" --tries=1 --max-redirect=0 \
      --content-on-error --timeout="$(secs "$1")" --header='Content-Type: application/json' \
      --header='Accept: application/json, application/problem+json' \
      --user-agent="ztp-client-sh/$ZTP_CLIENT_VERSION"
    [ -n "$token" ] && set -- "$@" --config="$tmp/auth"
    [ -n "$ca_file" ] && set -- "$@" --ca-certificate="$ca_file"
    [ -n "$cert_file" ] && set -- "$@" --certificate="$cert_file" --private-key="$key_file"
    wget "$@" "$url" </dev/null 2>"$tmp/headers"
    s_rc=$?
    a_status=$(awk '/^  HTTP\// { s = $2 } END { print s }' "$tmp/headers")
    if [ -z "$a_status" ]; then
      a_reason=$(grep -v -e '^  ' -e '^WARNING' "$tmp/headers" | head -n 1)
      [ -n "$a_reason" ] || a_reason="wget exit $s_rc (network failure)"
      client_cert_refused && return
      case $s_rc in
        5)
          case $a_reason in
            *'not yet'*) a_kind=retry a_reason="$a_reason (is the clock set? waiting for time sync)" ;;
            *) a_kind=untrusted ;;
          esac
          ;;
        *) a_kind=retry ;;
      esac
      return
    fi
    sed -i 's/^  //' "$tmp/headers" 2>/dev/null
  elif [ "$http_tool" = busybox ]; then
    # BusyBox wget sends GET or POST only, with Content-Type application/x-www-form-urlencoded
    # for --post-data; it keeps no body of an error answer (the status line is the reason).
    bb_ms=$1
    set -- -S -O "$tmp/body" -U "ztp-client-sh/$ZTP_CLIENT_VERSION"
    [ -n "$token" ] && [ -n "$bb_header" ] && set -- "$@" --header "Authorization: Bearer $token"
    # One argument may hold at most 128 KiB (Linux): a larger body goes by file when possible.
    if [ "$(wc -c <"$tmp/req")" -gt 65536 ] && [ -n "$bb_post_file" ]; then
      set -- "$@" --post-file "$tmp/req"
    else
      set -- "$@" --post-data "$(cat "$tmp/req")"
    fi
    with_deadline "$bb_ms" wget "$@" "$url$url_token" </dev/null 2>"$tmp/headers"
    s_rc=$?
    a_status=$(awk '/^  HTTP\// { s = $2 } END { print s }' "$tmp/headers")
    if [ -z "$a_status" ]; then
      a_reason=$(grep -v -e '^  ' -e '^Connecting' "$tmp/headers" | sed 's/^wget: //' | head -n 1)
      [ -n "$a_reason" ] || a_reason="wget exit $s_rc (network failure or timeout)"
      a_kind=retry
      return
    fi
    # Only the answer's head (its lines are indented), as GNU wget's.
    sed -n 's/^  //p' "$tmp/headers" >"$tmp/head" && mv "$tmp/head" "$tmp/headers"
  fi
  a_retry_after=$(awk 'tolower($1) == "retry-after:" { v = $2 } END { gsub(/\r/, "", v); print v }' "$tmp/headers")
  case $a_retry_after in *[!0-9]* | '') a_retry_after= ;; esac
  case $a_status in
    200 | 201)
      if [ -n "$(json_field "$ok_field" "$tmp/body")" ]; then a_kind=ok; return; fi
      a_kind=rejected
      a_reason="the server answered $a_status but not with a $ok_what; is --server a ztp server?"
      return
      ;;
  esac
  s_code=$(json_field code "$tmp/body")
  s_detail=$(json_field detail "$tmp/body" | sed 's/\\"/"/g; s/\\\\/\\/g')
  [ -n "$s_detail" ] || s_detail=$(json_field title "$tmp/body")
  [ -n "$s_detail" ] || s_detail=$(head -c 300 "$tmp/body" | tr '\n' ' ')
  # GNU wget does not keep the body of a 401: the status line's reason is all there is.
  [ -n "$s_detail" ] || s_detail=$(awk 'NR == 1 { $1 = ""; $2 = ""; sub(/^ +/, ""); gsub(/\r/, ""); print; exit }' "$tmp/headers")
  [ -n "$s_detail" ] || s_detail="HTTP $a_status"
  case $a_status in
    408 | 429 | 5??)
      a_kind=retry a_reason="server answered $a_status${s_code:+ $s_code}: $s_detail"
      ;;
    3??)
      a_kind=rejected
      s_loc=$(awk 'tolower($1) == "location:" { v = $2 } END { gsub(/\r/, "", v); print v }' "$tmp/headers")
      a_reason="the server redirects to ${s_loc:-(nowhere)}; use that as --server"
      ;;
    *)
      a_kind=rejected a_reason="$s_detail"
      ;;
  esac
  s_rcode=$s_code
}

# ---------------------------------------------------------------------------------------------

# RFC 8572's progress types, as the server takes them (src/reports/progress.ts).
PROGRESS_TYPES='bootstrap-initiated parsing-initiated parsing-warning parsing-error parsing-complete
boot-image-initiated boot-image-warning boot-image-error boot-image-mismatch
boot-image-installed-rebooting boot-image-complete pre-script-initiated pre-script-warning
pre-script-error pre-script-complete config-initiated config-warning config-error config-complete
post-script-initiated post-script-warning post-script-error post-script-complete bootstrap-warning
bootstrap-error bootstrap-complete informational'

main() {
  # `report TYPE [MESSAGE] options...`: a progress report instead of a registration.
  r_type= r_msg= r_msg_given= what=registration ok_field=id ok_what='device record'
  if [ "${1-}" = report ]; then
    shift
    what=report ok_field=type ok_what=report
    case ${1-} in -* | '') ;; *) r_type=$1; shift ;; esac
    case ${1-} in -* | '') ;; *) r_msg=$1 r_msg_given=1; shift ;; esac
    case " $* " in *' --help '* | *' -h '*) usage; exit 0 ;; esac
    [ -n "$r_type" ] || usage_error 'report: TYPE is required (e.g. bootstrap-complete)'
    case " $(printf '%s' "$PROGRESS_TYPES" | tr '\n' ' ') " in
      *" $r_type "*) ;;
      *) usage_error "report: '$r_type' is not an RFC 8572 progress type ($(printf '%s' "$PROGRESS_TYPES" | tr '\n' ' '))" ;;
    esac
    [ "$(printf '%s' "$r_msg" | wc -c)" -le 1024 ] || usage_error 'report: MESSAGE is larger than 1024 bytes'
  fi
  json= dry= quiet= o_server= o_id= o_idsrc= o_ip= o_name= o_ud= o_udf= o_token= o_tokenf= o_ca= o_cert= o_key= o_wait= o_timeout=
  o_ud_set= o_name_set= o_ip_set=
  while [ $# -gt 0 ]; do
    case $1 in
      --help | -h) usage; exit 0 ;;
      --json) json=1; shift; continue ;;
      --dry-run) dry=1; shift; continue ;;
      --quiet) quiet=1; shift; continue ;;
      --*=*) opt=${1%%=*} val=${1#*=}; shift ;;
      --*)
        opt=$1
        [ $# -ge 2 ] || usage_error "option '$opt' argument missing"
        val=$2
        shift 2
        ;;
      *) usage_error "unexpected argument '$1'" ;;
    esac
    case $opt in
      --server) o_server=$val ;;
      --id) o_id=$val ;;
      --id-source) o_idsrc=$val ;;
      --ip) o_ip=$val o_ip_set=1 ;;
      --name) o_name=$val o_name_set=1 ;;
      --userdata) o_ud=$val o_ud_set=1 ;;
      --userdata-file) o_udf=$val ;;
      --token) o_token=$val ;;
      --token-file) o_tokenf=$val ;;
      --ca-file) o_ca=$val ;;
      --cert-file) o_cert=$val ;;
      --key-file) o_key=$val ;;
      --wait) o_wait=$val ;;
      --timeout) o_timeout=$val ;;
      *) usage_error "unknown option '$opt'" ;;
    esac
  done

  case $ZTP_SERVED_FROM in @@*) ZTP_SERVED_FROM= ;; esac
  server=${o_server:-${ZTP_SERVER:-$ZTP_SERVED_FROM}}
  [ -n "$server" ] || usage_error '--server URL (or ZTP_SERVER) is required'
  case $server in
    http://?* | https://?*) ;;
    *) usage_error "--server must be an http:// or https:// URL, got '$server'" ;;
  esac
  case $server in *[?#@\ ]* | *"$NL"*) usage_error '--server must not contain credentials, a query, a fragment or spaces' ;; esac
  [ -n "$o_id" ] && [ -n "$o_idsrc" ] && usage_error 'give either --id or --id-source, not both'
  if [ -n "$o_id" ]; then
    id_given=$o_id
  elif [ -n "$o_idsrc" ]; then
    id_given=
  else
    id_given=${ZTP_ID:-}
  fi
  id_source=${o_idsrc:-${ZTP_ID_SOURCE:-mac}}
  case $id_source in
    mac | machine-id | cpu | dmi-uuid) ;;
    *) usage_error "--id-source must be one of mac, machine-id, cpu, dmi-uuid, got '$id_source'" ;;
  esac
  [ -n "$o_ud_set" ] || o_ud=${ZTP_USERDATA:-}
  [ -n "$o_udf" ] || o_udf=${ZTP_USERDATA_FILE:-}
  [ -n "$o_ud" ] && [ -n "$o_udf" ] && usage_error 'give either --userdata or --userdata-file, not both'
  [ -n "$o_token" ] || o_token=${ZTP_TOKEN:-}
  [ -n "$o_tokenf" ] || o_tokenf=${ZTP_TOKEN_FILE:-}
  [ -n "$o_token" ] && [ -n "$o_tokenf" ] && usage_error 'give either --token or --token-file, not both'
  ca_file=${o_ca:-${ZTP_CA_FILE:-}}
  cert_file=${o_cert:-${ZTP_CERT_FILE:-}}
  key_file=${o_key:-${ZTP_KEY_FILE:-}}
  if [ -n "$cert_file" ] && [ -z "$key_file" ] || [ -z "$cert_file" ] && [ -n "$key_file" ]; then
    usage_error 'give --cert-file and --key-file together'
  fi
  case $server in
    https://*) ;;
    *) [ -z "$ca_file$cert_file" ] || usage_error '--ca-file, --cert-file and --key-file need an https:// --server' ;;
  esac
  wait_ms=$(to_ms wait "${o_wait:-${ZTP_WAIT:-5m}}") || exit 2
  timeout_ms=$(to_ms timeout "${o_timeout:-${ZTP_TIMEOUT:-10s}}") || exit 2
  [ "$timeout_ms" -ge 100 ] || usage_error '--timeout must be at least 100ms'

  http_tool= bb_header= bb_post_file=
  if command -v curl >/dev/null 2>&1; then
    http_tool=curl
  elif command -v wget >/dev/null 2>&1; then
    wget_help=$(wget --help 2>&1)
    case $wget_help in
      *--method*) http_tool=wget ;;
      *--post-data*)
        # BusyBox wget: POST only; --header and --post-file only in some builds.
        http_tool=busybox
        case $wget_help in *--header*) bb_header=1 ;; esac
        case $wget_help in *--post-file*) bb_post_file=1 ;; esac
        ;;
    esac
  fi
  if [ -z "$http_tool" ] && [ -z "$dry" ]; then
    usage_error 'needs curl, GNU wget, or a BusyBox wget with --post-data'
  fi
  if [ "$http_tool" = busybox ]; then
    case $server in
      https://*) usage_error "BusyBox wget cannot check the server's TLS certificate: use an http:// --server, or install curl or GNU wget" ;;
    esac
  fi

  tmp=$(mktemp -d 2>/dev/null || { d=/tmp/ztp-client.$$ && mkdir -m 700 "$d" && echo "$d"; }) || die 1 'cannot create a temporary directory'
  trap 'rm -rf "$tmp"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  # Token, CA, userdata, name: checked before anything is sent.
  token=$o_token
  if [ -n "$o_tokenf" ]; then
    token=$(cat "$o_tokenf" 2>/dev/null) || usage_error "cannot read --token-file $o_tokenf: $(file_reason "$o_tokenf")"
    token=$(printf '%s' "$token" | tr -d ' \t\r\n')
  fi
  if [ -n "$token$o_tokenf" ]; then
    case $token in '' | *[!!-~]*) usage_error 'the token must be non-empty printable ASCII without spaces' ;; esac
    (
      umask 077
      t_esc=$(printf '%s' "$token" | sed 's/\\/\\\\/g; s/"/\\"/g')
      if [ "$http_tool" = curl ]; then
        printf 'header = "Authorization: Bearer %s"\n' "$t_esc" >"$tmp/auth"
      elif [ "$http_tool" = busybox ]; then
        : # on the command line: BusyBox wget reads no configuration file
      else
        printf 'header = Authorization: Bearer %s\n' "$token" >"$tmp/auth"
      fi
    )
  fi
  # A BusyBox wget without --header: the token travels in the URL (docs/security.md).
  url_token=
  if [ -n "$token" ] && [ "$http_tool" = busybox ] && [ -z "$bb_header" ]; then
    url_token="?token=$(printf '%s' "$token" | form_escape)"
  fi
  if [ -n "$ca_file" ]; then
    [ -r "$ca_file" ] || usage_error "cannot read --ca-file $ca_file: $(file_reason "$ca_file")"
    grep -q -- '-----BEGIN CERTIFICATE-----' "$ca_file" || usage_error "--ca-file $ca_file holds no PEM certificate"
  fi
  if [ -n "$cert_file" ]; then
    [ -r "$cert_file" ] || usage_error "cannot read --cert-file $cert_file: $(file_reason "$cert_file")"
    grep -q -- '-----BEGIN CERTIFICATE-----' "$cert_file" || usage_error "--cert-file $cert_file holds no PEM certificate"
    [ -r "$key_file" ] || usage_error "cannot read --key-file $key_file: $(file_reason "$key_file")"
    grep -Eq -- '-----BEGIN (EC |RSA )?PRIVATE KEY-----' "$key_file" || usage_error "--key-file $key_file holds no PEM private key"
  fi
  if [ -n "$o_udf" ]; then
    if [ "$o_udf" = - ]; then
      cat >"$tmp/userdata" || usage_error 'cannot read userdata from standard input'
    else
      cat "$o_udf" >"$tmp/userdata" 2>/dev/null || usage_error "cannot read --userdata-file $o_udf: $(file_reason "$o_udf")"
    fi
    [ "$(wc -c <"$tmp/userdata")" -le 65536 ] ||
      usage_error "--userdata-file $o_udf is larger than 65536 bytes (64 KiB)"
  else
    printf '%s' "$o_ud" >"$tmp/userdata"
    [ "$(wc -c <"$tmp/userdata")" -le 65536 ] || usage_error '--userdata is larger than 65536 bytes'
  fi
  # Name and userdata are sent only when given: a boot must not erase what an admin wrote.
  name_given=$o_name_set
  [ -n "$o_name_set" ] || { o_name=${ZTP_NAME:-} && [ -n "$o_name" ] && name_given=1; }
  ud_given=$o_ud_set
  [ -n "$o_ud$o_udf" ] && ud_given=1
  name=$o_name
  [ "$(printf '%s' "$name" | LC_ALL=C tr -d '\000-\037\177' | wc -c)" -eq "$(printf '%s' "$name" | wc -c)" ] ||
    usage_error '--name: name must not contain control characters'
  [ "$(printf '%s' "$name" | wc -m)" -le 255 ] || usage_error '--name: name must be at most 255 characters'
  [ -n "$o_ip_set" ] || o_ip=${ZTP_IP:-}
  fixed_ip=$o_ip
  # IPv4 is checked here; the server checks IPv6 (and answers 400 for a bad one).
  case $fixed_ip in
    *[!0-9a-fA-F.:]*) usage_error '--ip: ip must be an IPv4 or IPv6 address' ;;
    *:*) ;;
    ?*)
      printf '%s\n' "$fixed_ip" | awk -F. 'NF != 4 { exit 1 }
        { for (i = 1; i <= 4; i++) if ($i !~ /^(0|[1-9][0-9]?[0-9]?)$/ || $i > 255) exit 1 }' ||
        usage_error '--ip: ip must be an IPv4 or IPv6 address'
      ;;
  esac

  id= id_how=
  if [ -n "$id_given" ]; then
    id=$(canonical_id "$id_given") || usage_error "--id: $id"
    id_how='given with --id'
  elif [ "$id_source" != mac ]; then
    detect_file_id "$id_source"
  fi
  fixed_id=$id fixed_how=$id_how

  host=${server#*://}
  host=${host%%/*}
  case $host in
    \[*) host=${host#\[} host=${host%%]*} ;;
    *) host=${host%%:*} ;;
  esac
  base=${server%/}
  while [ "$base" != "${base%/}" ]; do base=${base%/}; done

  start=$(now_ms)
  deadline_ms=$wait_ms
  n=0
  while :; do
    n=$((n + 1))
    elapsed_ms=$(($(now_ms) - start))
    left_ms=$((deadline_ms - elapsed_ms))
    if [ "$wait_ms" -eq 0 ]; then
      t_ms=$timeout_ms
    else
      t_ms=$left_ms
      [ "$t_ms" -ge 1000 ] || t_ms=1000
      [ "$t_ms" -le "$timeout_ms" ] || t_ms=$timeout_ms
    fi

    # Facts that depend on the network are found again at every attempt.
    ip=$fixed_ip id=$fixed_id id_how=$fixed_how a_kind=
    if [ -z "$ip" ] || [ -z "$id" ]; then
      route_to "$host"
      case $? in
        0)
          [ -n "$ip" ] || ip=$src_ip
          if [ -z "$id" ]; then
            detect_mac "$src_ip" "$src_dev" || die 3 "cannot find the device id: $id_error"
          fi
          ;;
        1) a_kind=retry a_reason=$route_error ;;
        *) die 3 "cannot find the device id: $route_error" ;;
      esac
    fi
    if [ -z "$a_kind" ] && [ -n "$r_type" ]; then
      url="$base/ztp/report/$id"
      if [ "$http_tool" = busybox ]; then
        {
          printf 'type=%s' "$r_type"
          [ -z "$r_msg_given" ] || printf '&message=%s' "$(printf '%s' "$r_msg" | form_escape)"
        } >"$tmp/req"
      else
        {
          printf '{"type":"%s"' "$r_type"
          [ -z "$r_msg_given" ] || printf ',"message":"%s"' "$(printf '%s' "$r_msg" | json_escape)"
          printf '}'
        } >"$tmp/req"
      fi
      method=POST
    elif [ -z "$a_kind" ]; then
      url="$base/ztp/register/$id"
      if [ "$http_tool" = busybox ]; then
        {
          printf 'ip=%s' "$(printf '%s' "$ip" | form_escape)"
          [ -z "$name_given" ] || printf '&name=%s' "$(printf '%s' "$name" | form_escape)"
          [ -z "$ud_given" ] || printf '&userdata=%s' "$(form_escape <"$tmp/userdata")"
        } >"$tmp/req"
        method=POST
      else
        {
          printf '{"ip":"%s"' "$(printf '%s' "$ip" | json_escape)"
          [ -z "$name_given" ] || printf ',"name":"%s"' "$(printf '%s' "$name" | json_escape)"
          [ -z "$ud_given" ] || printf ',"userdata":"%s"' "$(json_escape <"$tmp/userdata")"
          printf '}'
        } >"$tmp/req"
        method=PUT
      fi
    fi
    if [ -z "$a_kind" ]; then
      if [ -n "$dry" ]; then
        d_url=$url
        [ -z "$url_token" ] || d_url="$url?token=***"
        if [ -n "$json" ]; then
          if [ -z "$token" ] || [ -n "$url_token" ]; then d_auth=null; else d_auth='"Bearer ***"'; fi
          if [ "$http_tool" != busybox ]; then d_body=$(cat "$tmp/req"); else d_body="\"$(cat "$tmp/req")\""; fi
          printf '{"method":"%s","url":"%s","authorization":%s,"body":%s,"id":"%s","idFrom":"%s"}\n' \
            "$method" "$(printf '%s' "$d_url" | json_escape)" "$d_auth" "$d_body" "$id" \
            "$(printf '%s' "$id_how" | json_escape)"
        else
          printf '%s %s\n' "$method" "$d_url"
          [ -z "$token" ] || [ -n "$url_token" ] || echo 'authorization: Bearer ***'
          cat "$tmp/req"
          echo
          echo "(dry run: nothing sent; id is the $id_how)"
        fi
        exit 0
      fi
      send "$t_ms"
    fi
    case $a_kind in
      ok)
        if [ -n "$r_type" ]; then
          if [ -n "$json" ]; then
            printf '{"id":"%s","type":"%s","message":"%s"}\n' "$id" "$r_type" "$(printf '%s' "$r_msg" | json_escape)"
          else
            echo "reported $r_type for $id"
          fi
          exit 0
        fi
        if [ -n "$json" ]; then
          cat "$tmp/body"
          echo
        else
          if [ "$a_status" = 201 ]; then r_how=created; else r_how=updated; fi
          echo "registered $(json_field id "$tmp/body") as $(json_field ip "$tmp/body") ($r_how)"
        fi
        exit 0
        ;;
      rejected)
        [ "$a_status" = 0 ] && die 4 "the server rejected the $what: $a_reason"
        die 4 "the server rejected the $what ($a_status${s_rcode:+ $s_rcode}): $a_reason"
        ;;
      usage) usage_error "curl cannot use the client certificate or key: $a_reason" ;;
      untrusted)
        [ -n "$ca_file" ] || a_reason="$a_reason (a private CA needs --ca-file)"
        die 6 "cannot trust ${base%%/ztp*}: $a_reason"
        ;;
    esac

    elapsed_ms=$(($(now_ms) - start))
    remaining=$((deadline_ms - elapsed_ms))
    origin=$(printf '%s' "$server" | sed -E 's#^(https?://[^/]*).*#\1#')
    if [ "$remaining" -le 0 ]; then
      die 5 "gave up after $(secs "$elapsed_ms")s and $n attempt$([ "$n" = 1 ] || echo s): $origin did not accept the $what (last error: $a_reason)"
    fi
    r=$(rand16)
    if [ -n "$a_retry_after" ]; then
      if [ $((a_retry_after * 1000)) -gt "$remaining" ]; then
        die 5 "gave up after $(secs "$elapsed_ms")s and $n attempt$([ "$n" = 1 ] || echo s): $origin did not accept the $what (last error: $a_reason (the server asked to retry after ${a_retry_after}.0s, beyond --wait))"
      fi
      delay=$((a_retry_after * 1000 + a_retry_after * 200 * r / 65536))
    else
      ceiling=500 i=1
      while [ "$i" -lt "$n" ] && [ "$ceiling" -lt 30000 ]; do ceiling=$((ceiling * 2)) i=$((i + 1)); done
      [ "$ceiling" -le 30000 ] || ceiling=30000
      delay=$((ceiling / 2 + ceiling * r / 131072))
    fi
    [ "$delay" -le "$remaining" ] || delay=$remaining
    [ -n "$quiet" ] || say "attempt $n failed: $a_reason; retrying in $(secs "$delay")s (giving up in $(secs "$remaining")s)"
    sleep_ms "$delay"
  done
}

main "$@"
