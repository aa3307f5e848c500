#!/usr/bin/env python3
"""Verifies a signed ztp manager call (Python 3 standard library only).

Usage: ZTP_MANAGER_SECRET=... verify-signature.py SIGNATURE METHOD TARGET < body
SIGNATURE is the ZTP-Signature header, TARGET the request's path and query as received.
Prints valid or invalid; exit status 0 or 1.
"""
import hashlib
import hmac
import os
import sys
import time

REPLAY_WINDOW = 300  # seconds: refuse calls signed longer ago (or ahead) than this


def verify(secret, header, method, target, body, now=None):
    fields = [part.split("=", 1) for part in header.split(",") if "=" in part]
    stamps = [value for key, value in fields if key == "t"]
    signatures = [value for key, value in fields if key == "v1"]
    if len(stamps) != 1 or not (stamps[0].isascii() and stamps[0].isdigit()) or not signatures:
        return False
    now = time.time() if now is None else now
    if abs(now - int(stamps[0])) > REPLAY_WINDOW:
        return False
    signed = f"{stamps[0]}.{method} {target}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)


if __name__ == "__main__":
    header, method, target = sys.argv[1:4]
    body = sys.stdin.buffer.read()
    ok = verify(os.environ["ZTP_MANAGER_SECRET"], header, method, target, body)
    print("valid" if ok else "invalid")
    sys.exit(0 if ok else 1)
