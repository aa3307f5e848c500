#!/bin/sh
# Verifies a signed ztp manager call with openssl dgst (POSIX sh).
# Usage: ZTP_MANAGER_SECRET=... verify-signature.sh SIGNATURE METHOD TARGET < body
# SIGNATURE is the ZTP-Signature header, TARGET the request's path and query as received.
# Prints valid or invalid; exit status 0 or 1. (openssl gets the secret as an argument, which
# other users of the host can read in ps: use it where that does not matter.)
set -eu
header=$1 method=$2 target=$3
fields=$(printf '%s\n' "$header" | tr ',' '\n')
t=$(printf '%s\n' "$fields" | sed -n 's/^t=\([0-9]\{1,12\}\)$/\1/p')
case $t in '' | *[!0-9]*) echo invalid; exit 1 ;; esac # none, or more than one
age=$(($(date +%s) - t))
if [ "$age" -gt 300 ] || [ "$age" -lt -300 ]; then echo invalid; exit 1; fi # replay window
expected=$({ printf '%s.%s %s.' "$t" "$method" "$target"; cat; } |
  openssl dgst -sha256 -hmac "$ZTP_MANAGER_SECRET" -r | cut -d ' ' -f 1)
for v1 in $(printf '%s\n' "$fields" | sed -n 's/^v1=\([0-9a-f]\{64\}\)$/\1/p'); do
  if [ "$v1" = "$expected" ]; then echo valid; exit 0; fi
done
echo invalid
exit 1
