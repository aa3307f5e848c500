#!/usr/bin/env python
# -*- coding: utf-8 -*-
# ztp device client, Python: for network operating systems that run ZTP scripts in Python
# (IOS-XE guest shell, NX-OS POAP, Arista EOS, SONiC, Junos). One file, standard library only,
# runs unchanged on Python 2.7 and 3.6+. The ztp server serves it at GET /ztp/client.py with its
# own URL filled in:
#
#     curl -fsS http://server:8080/ztp/client.py -o /tmp/ztp_client.py && python /tmp/ztp_client.py
#     python ztp_client.py --server http://server:8080 --name sw1 --wait 60s
#
# Same options, environment variables, output and exit codes as `ztp register`; run with --help
# for the list. name and userdata are sent only when given (--name, --userdata, or their ZTP_*
# variables): a boot never overwrites what an operator wrote.
# This file is the source of src/client/python-script.ts (npm run gen:client-py).
from __future__ import print_function

import errno
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import time

try:
    from collections import OrderedDict
except ImportError:  # pragma: no cover - Python 2.6 is not supported; keep the error readable
    OrderedDict = dict

PY2 = sys.version_info[0] == 2
if PY2:
    from urlparse import urlsplit

    text_type = unicode  # noqa: F821
else:
    from urllib.parse import urlsplit

    text_type = str

# Imported when the first request is sent: --help, usage errors and --dry-run start faster.
ssl = None
http_client = None


def load_network_modules():
    global ssl, http_client
    if http_client is not None:
        return
    try:
        import ssl as ssl_module
    except ImportError:  # a Python built without OpenSSL still registers over http
        ssl_module = None
    if PY2:
        import httplib as client_module
    else:
        import http.client as client_module
    ssl, http_client = ssl_module, client_module

ZTP_SERVED_FROM = '@@ZTP_SERVER@@'
# A device token the server filled in when it served this file to a device that presented one
# (GET /ztp/bootstrap/python?token=...); --token, --token-file and ZTP_TOKEN win over it.
ZTP_SERVED_TOKEN = '@@ZTP_TOKEN@@'
CLIENT_VERSION = '0.1.0'
ME = 'ztp_client.py'

# Exit codes: the same as `ztp register` and the sh client.
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_IDENTITY = 3
EXIT_REJECTED = 4
EXIT_GAVE_UP = 5
EXIT_UNTRUSTED = 6

ID_SOURCES = ('mac', 'machine-id', 'cpu', 'dmi-uuid')
ID_MAX_LENGTH = 128
NAME_MAX_LENGTH = 255
USERDATA_MAX_BYTES = 64 * 1024
MIN_TIMEOUT_MS = 100
# Backoff: the ceiling starts at INITIAL and doubles up to MAX; an attempt is never cut shorter
# than MIN_ATTEMPT by the --wait deadline; at most MAX_BODY of an answer is read.
INITIAL_BACKOFF_MS = 500
MAX_BACKOFF_MS = 30000
MIN_ATTEMPT_MS = 1000
MAX_BODY = 1024 * 1024
RESERVED_IDS = ('list', 'triggers', 'events', 'stats', 'devices')
# `python ztp_client.py report TYPE [MESSAGE] [options]`: RFC 8572's progress types, as the
# server takes them (src/reports/progress.ts), and its message limit in UTF-8 bytes.
PROGRESS_TYPES = (
    'bootstrap-initiated', 'parsing-initiated', 'parsing-warning', 'parsing-error', 'parsing-complete',
    'boot-image-initiated', 'boot-image-warning', 'boot-image-error', 'boot-image-mismatch',
    'boot-image-installed-rebooting', 'boot-image-complete', 'pre-script-initiated', 'pre-script-warning',
    'pre-script-error', 'pre-script-complete', 'config-initiated', 'config-warning', 'config-error',
    'config-complete', 'post-script-initiated', 'post-script-warning', 'post-script-error',
    'post-script-complete', 'bootstrap-warning', 'bootstrap-error', 'bootstrap-complete', 'informational',
)
REPORT_MESSAGE_MAX_BYTES = 1024

# Tests only: a directory standing in for / when reading /proc, /sys, /etc and /dev, so id
# detection runs against fixtures (messages always name the real paths); and a switch to the
# TLS code of Pythons older than 2.7.9, which the test machines do not have.
TEST_ROOT_VARIABLE = 'ZTP_PY_TEST_ROOT'
TEST_LEGACY_TLS_VARIABLE = 'ZTP_PY_TEST_LEGACY_TLS'

HELP = """Usage: python ztp_client.py [--server URL] [options]
       python ztp_client.py report TYPE [MESSAGE] [--server URL] [options]

Registers this device with a ztp server: PUT {server}/ztp/register/{id} with its ip, and its
name and userdata when given. Run it at every boot. Flags win over environment variables.
With `report`, sends a progress report instead: POST {server}/ztp/report/{id} with TYPE (an
RFC 8572 progress type, e.g. bootstrap-complete, bootstrap-error) and an optional MESSAGE.

Options:
  --server URL  (env ZTP_SERVER; default: the server this script was fetched from)
      Server base URL (http or https).
  --id-source SRC  (env ZTP_ID_SOURCE, default mac)
      Where the device id comes from: mac (the interface that routes to the server), machine-id,
      cpu (CPU serial), dmi-uuid.
  --id ID  (env ZTP_ID)
      Use this device id instead of detecting one.
  --ip IP  (env ZTP_IP)
      Address to register. Default: the local address used to reach the server.
  --name NAME  (env ZTP_NAME)
      Device name. Sent only when given: without it the server keeps the name it has.
  --userdata TEXT  (env ZTP_USERDATA)
      Free text, at most 64 KiB. Sent only when given (this, or --userdata-file).
  --userdata-file PATH  (env ZTP_USERDATA_FILE)
      Read userdata from a file (- for standard input).
  --token TOKEN  (env ZTP_TOKEN)
      Bearer token sent as Authorization: Bearer TOKEN.
  --token-file PATH  (env ZTP_TOKEN_FILE)
      Read the bearer token from a file (keeps it out of the process list).
  --ca-file PATH  (env ZTP_CA_FILE)
      PEM CA certificate(s) to trust for an https server (private CA).
  --cert-file PATH  (env ZTP_CERT_FILE)
      PEM client certificate for mutual TLS (with --key-file).
  --key-file PATH  (env ZTP_KEY_FILE)
      PEM private key of --cert-file (unencrypted).
  --wait DURATION  (env ZTP_WAIT, default 5m)
      Keep retrying an unreachable or busy server (connection errors, timeouts, 408, 429, 5xx)
      this long, e.g. 90s, 5m, 1h; 0 = one attempt.
  --timeout DURATION  (env ZTP_TIMEOUT, default 10s)
      Timeout of one attempt (connect + answer), e.g. 10s; at least 100ms.
  --json
      Print the registered record as JSON.
  --dry-run
      Detect and print what would be sent; send nothing.
  --quiet
      Do not print retry progress on standard error.
  --help
      Show this help.

Exit codes:
  0  registered (or, with --dry-run, detected and printed)
  1  unexpected error (a bug)
  2  usage error: bad option, unreadable file, id/ip/name/userdata invalid or too large
  3  identity detection failed: the id source or the local address is unavailable
  4  the server rejected the registration (4xx other than 408/429, a redirect, or a refused
     client certificate)
  5  gave up waiting: the server stayed unreachable or busy for --wait
  6  the server TLS certificate is not trusted (see --ca-file)"""

# (flag, environment variable or None, default or None, takes a value)
OPTIONS = (
    ('server', 'ZTP_SERVER', None, True),
    ('id-source', 'ZTP_ID_SOURCE', 'mac', True),
    ('id', 'ZTP_ID', None, True),
    ('ip', 'ZTP_IP', None, True),
    ('name', 'ZTP_NAME', None, True),
    ('userdata', 'ZTP_USERDATA', None, True),
    ('userdata-file', 'ZTP_USERDATA_FILE', None, True),
    ('token', 'ZTP_TOKEN', None, True),
    ('token-file', 'ZTP_TOKEN_FILE', None, True),
    ('ca-file', 'ZTP_CA_FILE', None, True),
    ('cert-file', 'ZTP_CERT_FILE', None, True),
    ('key-file', 'ZTP_KEY_FILE', None, True),
    ('wait', 'ZTP_WAIT', '5m', True),
    ('timeout', 'ZTP_TIMEOUT', '10s', True),
    ('json', None, None, False),
    ('dry-run', None, None, False),
    ('quiet', None, None, False),
    ('help', None, None, False),
)


class UsageError(Exception):
    pass


class DetectionError(Exception):
    def __init__(self, message, tried=None):
        if tried:
            message = '%s; tried: %s' % (message, '; '.join(tried))
        Exception.__init__(self, message)
        self.message_text = message


# ---------------------------------------------------------------------------------------------
# Text and output


def utf8(raw, what):
    """Bytes (an argument, a variable) as text; refuses what is not UTF-8."""
    if isinstance(raw, text_type):
        return raw
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError:
        raise UsageError('%s is not valid UTF-8 text' % what)


def native(text):
    """Text as the str type of this Python (bytes on 2, unicode on 3), for http headers."""
    return text.encode('utf-8') if PY2 else text


def write(stream, text):
    data = (text + '\n').encode('utf-8')
    target = stream if PY2 else stream.buffer
    target.write(data)
    target.flush()


def out(text):
    write(sys.stdout, text)


def err(text):
    write(sys.stderr, '%s: %s' % (ME, text))


def to_json(value):
    """Compact JSON as JavaScript's JSON.stringify writes it (UTF-8 kept as is)."""
    return json.dumps(value, ensure_ascii=False, separators=(',', ':'))


def argv_text():
    if PY2:
        return [utf8(a, 'an argument') for a in sys.argv[1:]]
    # Python 3.6 under the C locale decodes arguments as ASCII with surrogate escapes.
    return [utf8(os.fsencode(a), 'an argument') for a in sys.argv[1:]]


def environment():
    raw = os.environ if PY2 else os.environb
    env = {}
    for key, value in raw.items():
        if not PY2:
            key = key.decode('utf-8', 'replace')
        if key.startswith('ZTP_'):
            env[key] = value
    return env


# ---------------------------------------------------------------------------------------------
# Options


def parse_duration(flag, raw):
    """'500ms', '30s', '1.5s', '5m', '1h', '1d' or '0' -> milliseconds (the `ztp serve` rule)."""
    text = raw.strip()
    if re.match(r'^0+(\.0+)?$', text):
        return 0
    if re.match(r'^\d+(\.\d+)?$', text):
        raise UsageError(
            "--%s: '%s' has no unit: write e.g. %ss for seconds or %sms for milliseconds "
            '(units: ms, s, m, h, d)' % (flag, raw, text, text)
        )
    m = re.match(r'^(\d+(?:\.\d+)?)(ms|s|m|h|d)$', text)
    if not m:
        raise UsageError("--%s: '%s' is not a duration (use e.g. 500ms, 10s, 5m, 24h, 7d)" % (flag, raw))
    unit = {'ms': 1, 's': 1000, 'm': 60000, 'h': 3600000, 'd': 86400000}[m.group(2)]
    ms = float(m.group(1)) * unit
    if ms > 2 ** 31 * 1000:
        raise UsageError("--%s: duration '%s' is too large" % (flag, raw))
    return int(ms + 0.5)


def parse_args(argv, env):
    flags = dict((o[0], o) for o in OPTIONS)
    given = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith('--') or arg == '--':
            raise UsageError("Unexpected argument '%s'" % arg)
        name, eq, value = arg[2:].partition('=')
        spec = flags.get(name)
        if spec is None:
            raise UsageError("Unknown option '--%s'" % name)
        if not spec[3]:
            if eq:
                raise UsageError("Option '--%s' does not take an argument" % name)
            given[name] = True
            continue
        if not eq:
            if i >= len(argv):
                raise UsageError("Option '--%s <value>' argument missing" % name)
            value = argv[i]
            i += 1
        given[name] = value
    return given


def get_option(given, env, name):
    spec = [o for o in OPTIONS if o[0] == name][0]
    if name in given:
        return given[name]
    if spec[1] is not None:
        value = env.get(spec[1])
        if value is not None and len(value) > 0:
            return utf8(value, spec[1])
    return spec[2]


class Options(object):
    pass


def parse_options(argv, env):
    given = parse_args(argv, env)
    o = Options()
    o.help = given.get('help', False)
    if o.help:
        return o
    get = lambda name: get_option(given, env, name)  # noqa: E731
    server = get('server')
    if server is None:
        served = ZTP_SERVED_FROM
        server = None if served.startswith('@@') or served == '' else served
    if server is None:
        raise UsageError('--server URL (or ZTP_SERVER) is required')
    o.server = parse_server(server)
    o.id_source = get('id-source')
    if o.id_source not in ID_SOURCES:
        raise UsageError('--id-source must be one of %s, got \'%s\'' % (', '.join(ID_SOURCES), o.id_source))
    if 'id' in given and 'id-source' in given:
        raise UsageError('give either --id or --id-source, not both')
    # A flag wins over the environment for the identity as a whole: --id-source beats ZTP_ID.
    o.id = given.get('id') if 'id-source' in given else get('id')
    o.userdata = get('userdata')
    o.userdata_file = get('userdata-file')
    if o.userdata is not None and o.userdata_file is not None:
        raise UsageError('give either --userdata or --userdata-file, not both')
    o.token = get('token')
    o.token_file = get('token-file')
    if o.token is None and o.token_file is None and not ZTP_SERVED_TOKEN.startswith('@@'):
        o.token = ZTP_SERVED_TOKEN or None
    if o.token is not None and o.token_file is not None:
        raise UsageError('give either --token or --token-file, not both')
    o.cert_file = get('cert-file')
    o.key_file = get('key-file')
    if (o.cert_file is None) != (o.key_file is None):
        raise UsageError('give --cert-file and --key-file together')
    o.ca_file = get('ca-file')
    if o.server['scheme'] == 'http' and (o.cert_file is not None or o.ca_file is not None):
        raise UsageError('--ca-file, --cert-file and --key-file need an https:// --server')
    o.timeout_ms = parse_duration('timeout', get('timeout'))
    if o.timeout_ms < MIN_TIMEOUT_MS:
        raise UsageError('--timeout must be at least %dms' % MIN_TIMEOUT_MS)
    o.wait_ms = parse_duration('wait', get('wait'))
    o.ip = get('ip')
    o.name = get('name')
    o.json = given.get('json', False)
    o.dry_run = given.get('dry-run', False)
    o.quiet = given.get('quiet', False)
    return o


def parse_server(text):
    if any(ord(c) <= 32 or ord(c) >= 127 for c in text):
        raise UsageError("--server '%s' is not a URL" % text)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ('http', 'https'):
        if '://' not in text:
            raise UsageError("--server '%s' is not a URL" % text)
        raise UsageError("--server must be an http:// or https:// URL, got '%s'" % text)
    try:
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise UsageError("--server '%s' is not a URL" % text)
    if not host:
        raise UsageError("--server '%s' is not a URL" % text)
    if parts.query or parts.fragment or '?' in text or '#' in text or parts.username is not None:
        raise UsageError('--server must not contain credentials, a query or a fragment')
    default_port = 443 if scheme == 'https' else 80
    host = host.lower()
    shown = '[%s]' % host if ':' in host else host
    origin = '%s://%s' % (scheme, shown)
    if port is not None and port != default_port:
        origin += ':%d' % port
    return {
        'scheme': scheme,
        'host': host,
        'port': port if port is not None else default_port,
        'origin': origin,
        'base': origin + parts.path.rstrip('/'),
    }


# ---------------------------------------------------------------------------------------------
# Canonical forms (as the server and the other clients)

MAC_COLON_OR_HYPHEN = re.compile(r'^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$', re.I)
MAC_CISCO = re.compile(r'^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$', re.I)
MAC_BARE = re.compile(r'^[0-9a-f]{12}$', re.I)
OTHER_ID = re.compile(r'^[A-Za-z0-9._:-]{1,128}$')


def canonical_mac(raw):
    """aa:bb:cc:dd:ee:ff from colon, hyphen, Cisco dotted or bare 12-hex notation, else None."""
    if MAC_COLON_OR_HYPHEN.match(raw) or MAC_CISCO.match(raw) or MAC_BARE.match(raw):
        digits = re.sub(r'[:.-]', '', raw).lower()
        return ':'.join(digits[i:i + 2] for i in range(0, 12, 2))
    return None


def normalise_id(raw):
    mac = canonical_mac(raw)
    if mac is not None:
        return mac
    if not OTHER_ID.match(raw) or '\n' in raw:
        raise UsageError('device id must be a MAC address or 1-%d characters of A-Z a-z 0-9 . _ : -' % ID_MAX_LENGTH)
    if raw.lower() in RESERVED_IDS:
        raise UsageError("'%s' is a reserved path word and cannot be a device id" % raw)
    # Browsers and HTTP clients collapse '.' and '..' path segments: such an id is unreachable.
    if re.match(r'^\.+$', raw):
        raise UsageError("'%s' is only dots and cannot be a device id" % raw)
    return raw


IPV4 = re.compile(r'^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$')


def normalise_ip(raw):
    """IPv4 as given; IPv6 compressed and lower-case, IPv4-mapped as IPv4; zone ids refused."""
    if IPV4.match(raw):
        return raw
    if ':' in raw and '%' not in raw and re.match(r'^[0-9A-Fa-f:.]+$', raw):
        try:
            packed = socket.inet_pton(socket.AF_INET6, raw)
        except (socket.error, ValueError):
            packed = None
        if packed is not None:
            if packed[:12] == b'\x00' * 10 + b'\xff\xff':
                return text_type(socket.inet_ntop(socket.AF_INET, packed[12:]))
            return text_type(socket.inet_ntop(socket.AF_INET6, packed))
    raise UsageError('ip must be an IPv4 or IPv6 address')


def utf16_length(text):
    return len(text.encode('utf-16-le')) // 2


def validate_name(name):
    # The server counts UTF-16 code units, as JavaScript does.
    if utf16_length(name) > NAME_MAX_LENGTH:
        raise UsageError('name must be at most %d characters' % NAME_MAX_LENGTH)
    if re.search(r'[\x00-\x1f\x7f]', name):
        raise UsageError('name must not contain control characters')
    return name


# ---------------------------------------------------------------------------------------------
# Files


def real_path(path):
    root = os.environ.get(TEST_ROOT_VARIABLE)
    return root.rstrip('/') + path if root else path


def read_bytes(path, limit=None):
    """Reads a file of the device (under the test root, if any)."""
    f = open(real_path(path), 'rb')
    try:
        return f.read() if limit is None else f.read(limit)
    finally:
        f.close()


def read_text(path):
    return read_bytes(path).decode('utf-8', 'replace')


def read_or_none(path):
    try:
        return read_text(path)
    except (IOError, OSError):
        return None


def error_reason(e):
    code = getattr(e, 'errno', None)
    if code == errno.ENOENT:
        return 'not present'
    if code in (errno.EACCES, errno.EPERM):
        return 'permission denied (needs root)'
    if code in errno.errorcode:
        return errno.errorcode[code]
    return text_type(e)


def file_error(what, path, e):
    code = getattr(e, 'errno', None)
    reason = errno.errorcode.get(code) if code is not None else None
    return UsageError('cannot read %s %s: %s' % (what, path, reason or text_type(e)))


def read_user_file(what, path, limit):
    """A file the user named (never under the test root), at most limit+1 bytes."""
    try:
        f = open(path, 'rb')
        try:
            return f.read(limit + 1)
        finally:
            f.close()
    except (IOError, OSError) as e:
        raise file_error(what, path, e)


def load_userdata(opts):
    """The userdata to send, or None when none was given (then none is sent)."""
    if opts.userdata_file is None:
        if opts.userdata is None:
            return None
        if len(opts.userdata.encode('utf-8')) > USERDATA_MAX_BYTES:
            raise UsageError('--userdata is larger than %d bytes' % USERDATA_MAX_BYTES)
        return opts.userdata
    if opts.userdata_file == '-':
        stream = sys.stdin if PY2 else sys.stdin.buffer
        data = stream.read(USERDATA_MAX_BYTES + 1)
    else:
        data = read_user_file('--userdata-file', opts.userdata_file, USERDATA_MAX_BYTES)
    if len(data) > USERDATA_MAX_BYTES:
        raise UsageError(
            '--userdata-file %s is larger than %d bytes (64 KiB)' % (opts.userdata_file, USERDATA_MAX_BYTES)
        )
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError:
        raise UsageError('--userdata-file %s is not valid UTF-8 text' % opts.userdata_file)


def load_token(opts):
    token = opts.token
    if opts.token_file is not None:
        data = read_user_file('--token-file', opts.token_file, 64 * 1024)
        token = data.decode('utf-8', 'replace').strip()
    if token is not None and not re.match(r'^[\x21-\x7e]+$', token):
        raise UsageError('the token must be non-empty printable ASCII without spaces')
    return token


def load_pem(flag, path, marker, what):
    if path is None:
        return None
    data = read_user_file('--' + flag, path, 1024 * 1024).decode('utf-8', 'replace')
    if not re.search(marker, data):
        raise UsageError('--%s %s holds no PEM %s' % (flag, path, what))
    return path


# ---------------------------------------------------------------------------------------------
# Identity: ids that do not depend on the network


MACHINE_ID_FILES = ('/etc/machine-id', '/var/lib/dbus/machine-id')
CPUINFO = '/proc/cpuinfo'
DEVICE_TREE_SERIAL = '/sys/firmware/devicetree/base/serial-number'
DMI_UUID = '/sys/class/dmi/id/product_uuid'
PLACEHOLDER_UUIDS = (
    '00000000-0000-0000-0000-000000000000',
    'ffffffff-ffff-ffff-ffff-ffffffffffff',
    '03000200-0400-0500-0006-000700080009',
)


def detect_machine_id():
    tried = []
    for path in MACHINE_ID_FILES:
        try:
            text = read_text(path).strip()
        except (IOError, OSError) as e:
            tried.append('%s: %s' % (path, error_reason(e)))
            continue
        if re.match(r'^[0-9a-fA-F]{32}$', text) and not re.match(r'^0+$', text):
            return text.lower(), 'machine-id from %s' % path
        why = 'empty' if text == '' else 'uninitialized (first boot)' if text == 'uninitialized' else 'not 32 hex digits'
        tried.append('%s: %s' % (path, why))
    raise DetectionError('no machine-id found', tried)


def read_cpuid(leaf):
    f = open(real_path('/dev/cpu/0/cpuid'), 'rb')
    try:
        f.seek(leaf)
        data = f.read(16)
    finally:
        f.close()
    if len(data) != 16:
        raise IOError(errno.EIO, 'short read')
    return data


def format_psn(leaf1, leaf3):
    """Intel's processor serial number: signature (CPUID 1 EAX), then CPUID 3 EDX and ECX."""
    words = [struct.unpack('<I', leaf1[0:4])[0], struct.unpack('<I', leaf3[12:16])[0], struct.unpack('<I', leaf3[8:12])[0]]
    hexed = ''.join('%08X' % w for w in words)
    return '-'.join(hexed[i:i + 4] for i in range(0, len(hexed), 4))


def detect_cpu_id():
    tried = []
    cpuinfo = ''
    try:
        cpuinfo = read_text(CPUINFO)
        m = re.search(r'^Serial\s*:\s*(\S+)\s*$', cpuinfo, re.M | re.I)
        if m is None:
            tried.append('%s: no Serial line' % CPUINFO)
        elif re.match(r'^0+$', m.group(1)):
            tried.append('%s: Serial is all zeros' % CPUINFO)
        elif not OTHER_ID.match(m.group(1)):
            tried.append("%s: Serial '%s' is not a valid id" % (CPUINFO, m.group(1)))
        else:
            return m.group(1), 'cpu serial from %s' % CPUINFO
    except (IOError, OSError) as e:
        tried.append('%s: %s' % (CPUINFO, error_reason(e)))
    try:
        serial = read_text(DEVICE_TREE_SERIAL).replace('\x00', '').strip()
        if serial != '' and not re.match(r'^0+$', serial) and OTHER_ID.match(serial):
            return serial, 'cpu serial from %s' % DEVICE_TREE_SERIAL
        tried.append('%s: %s' % (DEVICE_TREE_SERIAL, 'empty' if serial == '' else "'%s' is not usable" % serial))
    except (IOError, OSError) as e:
        tried.append('%s: %s' % (DEVICE_TREE_SERIAL, error_reason(e)))
    m = re.search(r'^flags\s*:(.*)$', cpuinfo, re.M)
    if m is None or 'pn' not in m.group(1).split():
        tried.append('x86 processor serial number (CPUID leaf 3): not offered by this CPU (no pn flag)')
    else:
        try:
            return format_psn(read_cpuid(1), read_cpuid(3)), 'x86 processor serial number (CPUID leaf 3)'
        except (IOError, OSError) as e:
            tried.append('/dev/cpu/0/cpuid: %s' % error_reason(e))
    raise DetectionError('this platform exposes no CPU serial number', tried)


def detect_dmi_uuid():
    try:
        text = read_text(DMI_UUID).strip().lower()
    except (IOError, OSError) as e:
        raise DetectionError('no DMI product UUID', ['%s: %s' % (DMI_UUID, error_reason(e))])
    if not re.match(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$', text):
        raise DetectionError('no DMI product UUID', ["%s: '%s' is not a UUID" % (DMI_UUID, text)])
    if text in PLACEHOLDER_UUIDS:
        raise DetectionError('no DMI product UUID', ['%s: %s is a firmware placeholder, not unique' % (DMI_UUID, text)])
    return text, 'DMI product UUID from %s' % DMI_UUID


def detect_file_id(source):
    return {'machine-id': detect_machine_id, 'cpu': detect_cpu_id, 'dmi-uuid': detect_dmi_uuid}[source]()


# ---------------------------------------------------------------------------------------------
# Identity: the route to the server and its interface's MAC

# Errors meaning "the network is not ready yet" (boot): worth waiting for.
TRANSIENT_ERRNOS = set(
    getattr(errno, n) for n in ('ENETUNREACH', 'EHOSTUNREACH', 'EADDRNOTAVAIL', 'ENETDOWN') if hasattr(errno, n)
)
TRANSIENT_GAI = set(getattr(socket, n) for n in ('EAI_AGAIN', 'EAI_NONAME', 'EAI_NODATA') if hasattr(socket, n))


class NotReady(Exception):
    pass


def source_address(host, port):
    """The local address the kernel uses to reach host: a connected UDP socket (nothing is sent)."""
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
    except socket.gaierror as e:
        if e.args and e.args[0] in TRANSIENT_GAI:
            raise NotReady('network not ready: cannot resolve %s (%s)' % (host, e.args[-1]))
        raise DetectionError('cannot resolve %s: %s' % (host, e.args[-1]))
    family, _, _, _, address = infos[0]
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        try:
            s.connect(address)
        except socket.error as e:
            if e.errno in TRANSIENT_ERRNOS:
                raise NotReady('network not ready: %s' % describe_socket_error(e, address[0], port))
            raise DetectionError(
                'cannot find the local address used to reach %s: %s' % (host, describe_socket_error(e, address[0], port))
            )
        local = s.getsockname()[0]
    finally:
        s.close()
    return text_type(local.split('%')[0]), address[0]


def which(command):
    for d in os.environ.get('PATH', '').split(os.pathsep):
        candidate = os.path.join(d, command)
        if d and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def route_device_by_ip_command(address):
    """The device of `ip route get ADDRESS`, or None when `ip` is not there or says nothing."""
    ip = which('ip')
    if ip is None:
        return None
    try:
        devnull = open(os.devnull, 'wb')
        try:
            p = subprocess.Popen([ip, 'route', 'get', address], stdout=subprocess.PIPE, stderr=devnull)
            output = p.communicate()[0].decode('utf-8', 'replace')
        finally:
            devnull.close()
    except (IOError, OSError):
        return None
    if p.returncode != 0:
        return None
    m = re.search(r'\bdev (\S+)', output)
    return m.group(1) if m else None


def ipv4_host_order(address):
    return struct.unpack('=I', socket.inet_aton(address))[0]


def route_device_by_proc(address):
    """Longest-prefix match of address in /proc/net/route or /proc/net/ipv6_route (no `ip` here)."""
    best = None
    if ':' not in address:
        text = read_or_none('/proc/net/route') or ''
        target = ipv4_host_order(address)
        for line in text.split('\n')[1:]:
            f = line.split()
            if len(f) < 8:
                continue
            try:
                dest, flags, metric, mask = int(f[1], 16), int(f[3], 16), int(f[6]), int(f[7], 16)
            except ValueError:
                continue
            if flags & 1 and target & mask == dest:
                key = (bin(mask).count('1'), -metric)
                if best is None or key > best[0]:
                    best = (key, f[0])
    else:
        text = read_or_none('/proc/net/ipv6_route') or ''
        target = int(''.join('%02x' % c for c in bytearray(socket.inet_pton(socket.AF_INET6, address))), 16)
        for line in text.split('\n'):
            f = line.split()
            if len(f) < 10:
                continue
            try:
                dest, prefix, metric, flags = int(f[0], 16), int(f[1], 16), int(f[5], 16), int(f[8], 16)
            except ValueError:
                continue
            mask = ((1 << prefix) - 1) << (128 - prefix) if prefix else 0
            if flags & 0x1 and not flags & 0x200 and target & mask == dest:
                key = (prefix, -metric)
                if best is None or key > best[0]:
                    best = (key, f[9])
    return best[1] if best else None


def default_route_interfaces():
    """Interfaces holding a default route, IPv4 then IPv6, lowest metric first."""
    v4 = read_or_none('/proc/net/route')
    v6 = read_or_none('/proc/net/ipv6_route')
    if v4 is None and v6 is None:
        return None
    routes4 = []
    for line in (v4 or '').split('\n')[1:]:
        f = line.split()
        if len(f) < 8:
            continue
        try:
            up = int(f[3], 16) & 1
            metric = int(f[6]) if re.match(r'^\d+$', f[6]) else 0
        except ValueError:
            continue
        if f[1] == '00000000' and f[7] == '00000000' and up and f[0] != 'lo':
            routes4.append((metric, len(routes4), f[0]))
    routes6 = []
    for line in (v6 or '').split('\n'):
        f = line.split()
        if len(f) < 10:
            continue
        try:
            flags = int(f[8], 16)
            metric = int(f[5], 16)
        except ValueError:
            continue
        if re.match(r'^0{32}$', f[0]) and f[1] == '00' and flags & 0x1 and not flags & 0x200 and f[9] != 'lo':
            routes6.append((metric, len(routes6), f[9]))
    result = []
    for _, _, iface in sorted(routes4) + sorted(routes6):
        if iface not in result:
            result.append(iface)
    return result


def mac_of(iface):
    """(mac, None) for a usable MAC of iface, else (None, why)."""
    base = '/sys/class/net/%s/' % iface
    try:
        mac = read_text(base + 'address').strip().lower()
    except (IOError, OSError):
        return None, '%s: no such interface' % iface
    flags = read_or_none(base + 'flags')
    try:
        if flags is not None and int(flags.strip(), 16) & 0x8:
            return None, '%s: loopback interface' % iface
    except ValueError:
        pass
    canonical = canonical_mac(mac)
    if canonical is None:
        return None, "%s: '%s' is not a MAC address" % (iface, mac)
    if canonical == '00:00:00:00:00:00':
        return None, '%s: all-zero address (no hardware address)' % iface
    if canonical == 'ff:ff:ff:ff:ff:ff':
        return None, '%s: broadcast address' % iface
    if int(canonical[0:2], 16) & 1:
        return None, '%s: multicast address' % iface
    if (read_or_none(base + 'addr_assign_type') or '').strip() == '1':
        return None, '%s: randomly generated address (addr_assign_type 1)' % iface
    return canonical, None


LOOPBACK = re.compile(r'^(127\.|::1$|::ffff:127\.)')


def detect_mac(source_ip, server_address):
    """The MAC of the interface that routes to the server; on loopback, of the default route's."""
    dev = route_device_by_ip_command(server_address) or route_device_by_proc(server_address)
    if not LOOPBACK.match(source_ip) and dev != 'lo':
        if dev is None:
            raise DetectionError('no network interface has the source address %s, so its MAC is unknown' % source_ip)
        mac, why = mac_of(dev)
        if mac is not None:
            return mac, 'mac of %s (route to the server)' % dev
        raise DetectionError(
            'the interface that carries the route to the server has no usable MAC address (%s)' % why
        )
    # The server is reached over loopback (testing on one box): identify it by its default route.
    candidates = default_route_interfaces()
    if candidates is None:
        raise DetectionError(
            'the server is on loopback and the default-route interface is unknown (no /proc/net/route)'
        )
    tried = []
    for iface in candidates:
        mac, why = mac_of(iface)
        if mac is not None:
            return mac, 'mac of %s (default route; the server is on loopback)' % iface
        tried.append(why)
    if not candidates:
        tried.append('no default route in /proc/net/route or /proc/net/ipv6_route')
    raise DetectionError('the server is on loopback and no default-route interface has a usable MAC address', tried)


# ---------------------------------------------------------------------------------------------
# HTTP


def describe_socket_error(e, host, port):
    code = errno.errorcode.get(getattr(e, 'errno', None) or -1)
    if code == 'ECONNREFUSED':
        return 'connect ECONNREFUSED %s:%d' % (host, port)
    text = getattr(e, 'strerror', None) or text_type(e) or e.__class__.__name__
    return '%s: %s' % (code, text) if code else text


def parse_retry_after(value, now):
    """'Retry-After: 5' or an HTTP date -> milliseconds from now (seconds since the epoch)."""
    if value is None:
        return None
    v = value.strip()
    if re.match(r'^\d+$', v):
        return int(v) * 1000
    try:
        from email.utils import mktime_tz, parsedate_tz

        parsed = parsedate_tz(v)
        if parsed is None:
            return None
        return max(0, int((mktime_tz(parsed) - now) * 1000))
    except (TypeError, ValueError, OverflowError):
        return None


def classify(status, headers, text, now, expect='record'):
    """An answer as ok / retry / rejected, like the Node client's classify()."""
    if expect == 'report' and status == 201:
        try:
            report = json.loads(text)
        except ValueError:
            report = None
        if isinstance(report, dict) and isinstance(report.get('type'), text_type):
            return {'kind': 'ok', 'created': True, 'record': None}
        return {
            'kind': 'rejected',
            'status': status,
            'code': None,
            'detail': 'the server answered %d but not with a report; is --server a ztp server?' % status,
        }
    if expect == 'record' and status in (200, 201):
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if isinstance(record, dict) and isinstance(record.get('id'), text_type) and isinstance(record.get('ip'), text_type):
            shown = OrderedDict()
            shown['id'] = record['id']
            shown['ip'] = record['ip']
            shown['name'] = record.get('name') or ''
            shown['userdata'] = record.get('userdata') or ''
            return {'kind': 'ok', 'created': status == 201, 'record': shown}
        return {
            'kind': 'rejected',
            'status': status,
            'code': None,
            'detail': 'the server answered %d but not with a device record; is --server a ztp server?' % status,
        }
    code = None
    detail = None
    if 'json' in (headers.get('content-type') or ''):
        try:
            problem = json.loads(text)
        except ValueError:
            problem = None
        if isinstance(problem, dict):
            if isinstance(problem.get('code'), text_type):
                code = problem['code']
            if isinstance(problem.get('detail'), text_type):
                detail = problem['detail']
            elif isinstance(problem.get('title'), text_type):
                detail = problem['title']
    if detail is None:
        detail = text.strip()[:300] or 'HTTP %d' % status
    if status in (408, 429) or status >= 500:
        return {
            'kind': 'retry',
            'reason': 'server answered %d%s: %s' % (status, ' ' + code if code else '', detail),
            'retry_after_ms': parse_retry_after(headers.get('retry-after'), now),
        }
    if 300 <= status < 400:
        return {
            'kind': 'rejected',
            'status': status,
            'code': None,
            'detail': 'the server redirects to %s; use that as --server' % (headers.get('location') or '(nowhere)'),
        }
    return {'kind': 'rejected', 'status': status, 'code': code, 'detail': detail}


# TLS alerts by which a server refuses our (missing or unknown) client certificate.
# OpenSSL names them in capitals with underscores or, in newer messages, in words.
REFUSED_CLIENT_CERT = re.compile(
    r'(TLSV13_ALERT_CERTIFICATE_REQUIRED|SSLV3_ALERT_BAD_CERTIFICATE|TLSV1_ALERT_UNKNOWN_CA|'
    r'SSLV3_ALERT_CERTIFICATE_UNKNOWN|TLSV1_ALERT_ACCESS_DENIED)'
)
# Where a Python without ssl.SSLContext (before 2.7.9) finds the system's CAs.
SYSTEM_CA_BUNDLES = (
    '/etc/ssl/certs/ca-certificates.crt',
    '/etc/pki/tls/certs/ca-bundle.crt',
    '/etc/ssl/ca-bundle.pem',
    '/etc/ssl/cert.pem',
)


class Untrusted(Exception):
    pass


def same_ip(a, b):
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_pton(family, a) == socket.inet_pton(family, b)
        except (socket.error, ValueError):
            continue
    return False


def check_peer_host(cert, host):
    """What ssl.match_hostname does, also for IP addresses (Python 2's matches DNS names only)."""
    sans = cert.get('subjectAltName', ())
    ips = [v for k, v in sans if k == 'IP Address']
    dns = [v for k, v in sans if k == 'DNS']
    if not sans:
        dns = [v for rdn in cert.get('subject', ()) for k, v in rdn if k == 'commonName']
    if any(same_ip(ip, host) for ip in ips):
        return
    if not re.match(r'^[0-9.]+$|:', host):
        for pattern in dns:
            pattern = pattern.lower()
            if pattern == host or (
                pattern.startswith('*.') and '.' in host and host.split('.', 1)[1] == pattern[2:]
            ):
                return
    raise Untrusted("the certificate is for %s, not for '%s'" % (', '.join(ips + dns) or 'no name', host))


def checked_https_connection(host, port, timeout, wrap):
    """An HTTPS connection whose socket comes from wrap(); the host name is checked here."""

    class Connection(http_client.HTTPSConnection):
        def connect(self):
            self.sock = wrap(socket.create_connection((self.host, self.port), self.timeout))
            check_peer_host(self.sock.getpeercert(), host)

    return Connection(host, port, timeout=timeout)


def connection(server, timeout_s, tls):
    host, port = server['host'], server['port']
    if server['scheme'] == 'http':
        return http_client.HTTPConnection(host, port, timeout=timeout_s)
    if ssl is None:
        raise Untrusted('this Python has no ssl module')
    if not hasattr(ssl, 'create_default_context') or os.environ.get(TEST_LEGACY_TLS_VARIABLE):
        # Before 2.7.9 (IOS-XE 16's guest shell has 2.7.5): no SSLContext, no system CA store.
        ca = tls['ca'] or next((p for p in SYSTEM_CA_BUNDLES if os.path.exists(p)), None)
        if ca is None:
            raise Untrusted('no CA certificates to verify the server with')
        return checked_https_connection(
            host,
            port,
            timeout_s,
            lambda sock: ssl.wrap_socket(
                sock, keyfile=tls['key'], certfile=tls['cert'], cert_reqs=ssl.CERT_REQUIRED, ca_certs=ca
            ),
        )
    context = ssl.create_default_context(cafile=tls['ca'])
    # Python 3.13 refuses CA certificates without a keyUsage extension (VERIFY_X509_STRICT);
    # many private CAs lack it and the Node and sh clients accept them, so this one does too.
    if hasattr(ssl, 'VERIFY_X509_STRICT'):
        context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    if tls['cert'] is not None:
        context.load_cert_chain(tls['cert'], tls['key'])
    if sys.version_info < (3, 5):
        # Python 2's hostname check knows no IP addresses: a server reached by IP would fail it.
        context.check_hostname = False
        return checked_https_connection(
            host, port, timeout_s, lambda sock: context.wrap_socket(sock, server_hostname=host)
        )
    return http_client.HTTPSConnection(host, port, timeout=timeout_s, context=context)


def attempt(server, path, body, token, tls, timeout_ms, method='PUT', expect='record'):
    """Sends one request (a registration's PUT) and classifies the result; never raises for network trouble."""
    headers = {
        'Content-Type': 'application/json',
        'Accept': 'application/json, application/problem+json',
        'User-Agent': 'ztp-client-py/%s python/%s' % (CLIENT_VERSION, '.'.join(map(str, sys.version_info[:3]))),
    }
    if token is not None:
        headers['Authorization'] = 'Bearer ' + token
    headers = dict((native(k), native(v)) for k, v in headers.items())
    timeout_s = timeout_ms / 1000.0
    load_network_modules()
    conn = None
    try:
        conn = connection(server, timeout_s, tls)
        try:
            conn.request(method, native(path), body, headers)
        except (socket.error, IOError, OSError) as e:
            # TLS 1.3: a server that refuses our certificate sends its alert after our side of
            # the handshake is done, so the request can meet a closed socket (EPIPE) first.
            # Read what the server sent: its alert says why, and a refusal is not retried.
            sock = getattr(conn, 'sock', None)
            if ssl is None or isinstance(e, ssl.SSLError) or sock is None or server['scheme'] != 'https':
                raise
            try:
                sock.recv(1)
            except ssl.SSLError:
                raise
            except Exception:  # noqa: B902 - no alert to read: the original error stands
                pass
            raise e
        response = conn.getresponse()
        data = response.read(MAX_BODY + 1)[:MAX_BODY]
        answer_headers = dict((k.lower(), v) for k, v in response.getheaders())
        return classify(response.status, answer_headers, data.decode('utf-8', 'replace'), time.time(), expect)
    except Untrusted as e:
        return {'kind': 'untrusted', 'reason': text_type(e)}
    except socket.timeout:
        return {'kind': 'retry', 'reason': 'no answer within %gs' % timeout_s}
    except Exception as e:  # noqa: B902 - every other failure is classified, never raised
        return classify_exception(e, server)
    finally:
        if conn is not None:
            conn.close()


def classify_exception(e, server):
    text = text_type(e)
    cert_error = getattr(ssl, 'CertificateError', None) if ssl else None
    if ssl is not None and isinstance(e, ssl.SSLError) or (cert_error and isinstance(e, cert_error)):
        refused = REFUSED_CLIENT_CERT.search(text.upper().replace(' ', '_'))
        if refused:
            alert = refused.group(1)
            return {
                'kind': 'rejected',
                'status': 0,
                'code': None,
                'detail': 'the server refused the TLS handshake (%s); mutual TLS needs --cert-file and --key-file from a CA it trusts' % alert,
            }
        if 'not yet valid' in text:
            # Devices without a real-time clock boot in 1970 until NTP syncs: wait for it.
            return {'kind': 'retry', 'reason': '%s (is the clock set? waiting for time sync)' % text}
        if cert_error and isinstance(e, cert_error) or 'CERTIFICATE_VERIFY_FAILED' in text or 'certificate verify failed' in text:
            return {'kind': 'untrusted', 'reason': text}
        return {'kind': 'retry', 'reason': text}
    if isinstance(e, (socket.error, IOError, OSError)):
        return {'kind': 'retry', 'reason': describe_socket_error(e, server['host'], server['port'])}
    if isinstance(e, http_client.HTTPException):
        return {'kind': 'retry', 'reason': '%s: %s' % (e.__class__.__name__, text)}
    raise e


# ---------------------------------------------------------------------------------------------
# Waiting


def backoff_ms(n, r):
    """Delay before retry n (1-based): "equal jitter", between half and all of the ceiling."""
    ceiling = min(MAX_BACKOFF_MS, INITIAL_BACKOFF_MS * 2 ** (n - 1))
    return int(ceiling / 2.0 + r * ceiling / 2.0 + 0.5)


def secs(ms):
    return '%.1fs' % (ms / 1000.0)


def now_ms():
    return int(time.time() * 1000)


def with_retry(attempt_fn, wait_ms, timeout_ms, log):
    start = now_ms()
    deadline = start + wait_ms
    n = 0
    while True:
        n += 1
        left = deadline - now_ms()
        t = timeout_ms if wait_ms == 0 else min(timeout_ms, max(left, MIN_ATTEMPT_MS))
        outcome = attempt_fn(t)
        if outcome['kind'] != 'retry':
            return outcome
        now = now_ms()
        remaining = deadline - now

        def gave_up(reason):
            return {'kind': 'gave-up', 'attempts': n, 'elapsed_ms': now - start, 'reason': reason}

        if remaining <= 0:
            return gave_up(outcome['reason'])
        retry_after = outcome.get('retry_after_ms')
        if retry_after is not None:
            # Honour the server's pacing; a little jitter so a fleet that rebooted together spreads out.
            delay = int(retry_after * (1 + 0.2 * random.random()) + 0.5)
            if retry_after > remaining:
                return gave_up(
                    '%s (the server asked to retry after %s, beyond --wait)' % (outcome['reason'], secs(retry_after))
                )
        else:
            delay = backoff_ms(n, random.random())
        delay = min(delay, remaining)
        log('attempt %d failed: %s; retrying in %s (giving up in %s)' % (n, outcome['reason'], secs(delay), secs(remaining)))
        time.sleep(delay / 1000.0)


# ---------------------------------------------------------------------------------------------


def usage_fail(message):
    err("%s\nRun '%s --help' for the options." % (message, ME))
    return EXIT_USAGE


def flagged(flag, fn, *args):
    try:
        return fn(*args)
    except UsageError as e:
        raise UsageError('--%s: %s' % (flag, e))


def split_report(argv):
    """`report TYPE [MESSAGE] options...` -> (report or None, options)."""
    if not argv or argv[0] != 'report':
        return None, argv
    rest = argv[1:]
    positional = []
    while len(positional) < 2 and rest and not rest[0].startswith('-'):
        positional.append(rest.pop(0))
    if '--help' in rest:
        return {'type': None, 'message': None}, rest
    if not positional:
        raise UsageError('report: TYPE is required (e.g. bootstrap-complete)')
    if positional[0] not in PROGRESS_TYPES:
        raise UsageError(
            "report: '%s' is not an RFC 8572 progress type (%s)" % (positional[0], ', '.join(PROGRESS_TYPES))
        )
    message = positional[1] if len(positional) > 1 else None
    if message is not None and len(message.encode('utf-8')) > REPORT_MESSAGE_MAX_BYTES:
        raise UsageError('report: MESSAGE is larger than %d bytes' % REPORT_MESSAGE_MAX_BYTES)
    return {'type': positional[0], 'message': message}, rest


def main():
    report = None
    try:
        report, argv = split_report(argv_text())
        opts = parse_options(argv, environment())
        if opts.help:
            out(HELP)
            return EXIT_OK
        token = load_token(opts)
        tls = {
            'ca': load_pem('ca-file', opts.ca_file, r'-----BEGIN CERTIFICATE-----', 'certificate'),
            'cert': load_pem('cert-file', opts.cert_file, r'-----BEGIN CERTIFICATE-----', 'certificate'),
            'key': load_pem('key-file', opts.key_file, r'-----BEGIN (EC |RSA )?PRIVATE KEY-----', 'private key'),
        }
        userdata = load_userdata(opts)
        # Name and userdata are the operator's unless the device is told to send them: a boot must
        # not overwrite what an admin wrote, so there is no default (not even the hostname).
        name = None if opts.name is None else flagged('name', validate_name, opts.name)
        fixed_ip = None if opts.ip is None else flagged('ip', normalise_ip, opts.ip)
        fixed_id = None
        if opts.id is not None:
            fixed_id = (flagged('id', normalise_id, opts.id), 'given with --id')
    except UsageError as e:
        return usage_fail(text_type(e))

    # Ids that do not depend on the network are found once, before waiting for anything.
    if fixed_id is None and opts.id_source != 'mac':
        try:
            fixed_id = detect_file_id(opts.id_source)
        except DetectionError as e:
            err('cannot find the %s id: %s' % (opts.id_source, e.message_text))
            return EXIT_IDENTITY

    server = opts.server
    state = {'identity_error': None, 'request': None}
    what = 'registration' if report is None else 'report'
    route = '/ztp/register/' if report is None else '/ztp/report/'
    method = 'PUT' if report is None else 'POST'

    # Each attempt re-detects the source address (and so the MAC): at boot the network may come
    # up, or DHCP may change the address, while we wait.
    def one_attempt(timeout_ms):
        ip, identity = fixed_ip, fixed_id
        if ip is None or identity is None:
            try:
                source, server_address = source_address(server['host'], server['port'])
                if ip is None:
                    ip = normalise_ip(source)
                if identity is None:
                    identity = detect_mac(source, server_address)
            except NotReady as e:
                return {'kind': 'retry', 'reason': text_type(e)}
            except DetectionError as e:
                state['identity_error'] = e.message_text
                return {'kind': 'rejected', 'status': 0, 'code': None, 'detail': e.message_text}
        if report is None:
            body = OrderedDict([('ip', ip)])
            if name is not None:
                body['name'] = name
            if userdata is not None:
                body['userdata'] = userdata
        else:
            body = OrderedDict([('type', report['type'])])
            if report['message'] is not None:
                body['message'] = report['message']
        path = server['base'][len(server['origin']):] + route + identity[0]
        state['request'] = (server['base'] + route + identity[0], body, identity)
        if opts.dry_run:
            return {'kind': 'ok', 'created': False, 'record': None}
        expect = 'record' if report is None else 'report'
        return attempt(server, path, to_json(body).encode('utf-8'), token, tls, timeout_ms, method, expect)

    log = (lambda line: None) if opts.quiet else err
    final = with_retry(one_attempt, opts.wait_ms, opts.timeout_ms, log)

    if state['identity_error'] is not None:
        err('cannot find the device id: %s' % state['identity_error'])
        return EXIT_IDENTITY
    kind = final['kind']
    if kind == 'ok':
        if opts.dry_run:
            url, body, identity = state['request']
            if opts.json:
                plan = OrderedDict()
                plan['method'] = method
                plan['url'] = url
                plan['authorization'] = None if token is None else 'Bearer ***'
                plan['body'] = body
                plan['id'] = identity[0]
                plan['idFrom'] = identity[1]
                out(to_json(plan))
            else:
                out('%s %s' % (method, url))
                if token is not None:
                    out('authorization: Bearer ***')
                out(to_json(body))
                out('(dry run: nothing sent; id is the %s)' % identity[1])
            return EXIT_OK
        if report is not None:
            device_id = state['request'][2][0]
            if opts.json:
                shown = OrderedDict([('id', device_id), ('type', report['type']), ('message', report['message'] or '')])
                out(to_json(shown))
            else:
                out('reported %s for %s' % (report['type'], device_id))
            return EXIT_OK
        record = final['record']
        if opts.json:
            out(to_json(record))
        else:
            out('registered %s as %s (%s)' % (record['id'], record['ip'], 'created' if final['created'] else 'updated'))
        return EXIT_OK
    if kind == 'rejected':
        if final['status'] == 0:
            err('the server rejected the %s: %s' % (what, final['detail']))
        else:
            code = ' ' + final['code'] if final.get('code') else ''
            err('the server rejected the %s (%d%s): %s' % (what, final['status'], code, final['detail']))
        return EXIT_REJECTED
    if kind == 'untrusted':
        hint = ' (a private CA needs --ca-file)' if tls['ca'] is None else ''
        err('cannot trust %s: %s%s' % (server['origin'], final['reason'], hint))
        return EXIT_UNTRUSTED
    attempts = final['attempts']
    err(
        'gave up after %s and %d attempt%s: %s did not accept the %s (last error: %s)'
        % (secs(final['elapsed_ms']), attempts, '' if attempts == 1 else 's', server['origin'], what, final['reason'])
    )
    return EXIT_GAVE_UP


def run():
    try:
        code = main()
    except KeyboardInterrupt:
        code = 130
    except Exception:  # noqa: B902 - a bug: show it, exit 1
        import traceback

        err('unexpected error (a bug):\n' + ''.join(traceback.format_exc()))
        code = EXIT_INTERNAL
    sys.exit(code)


if __name__ == '__main__':
    run()
