"""Which name a TCP client presents in its first bytes: TLS SNI or the HTTP/1 Host.

With Encrypted ClientHello the name read is the outer one (the provider's public name); the
inner name stays hidden, so an ECH connection passes only if that public name is allowed.

Pure: the name checker feeds it everything the client has sent so far and acts on the
answer. The client is the sandbox, so the bytes are hostile. Anything that starts like a
ClientHello or an HTTP/1 request but does not parse strictly is MALFORMED (refused), never
"no name": a server whose parser is more lenient than ours must not see a name we missed.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass

#: The most a client may send before the checker decides (a ClientHello with post-quantum
#: key shares is about 2 KiB; request headers rarely pass 8 KiB).
SNIFF_LIMIT = 16 * 1024

_HANDSHAKE_RECORD = 0x16
#: change_cipher_spec, alert, handshake, application_data, heartbeat: a first record of any
#: of them is TLS (Go's server skips warning alerts before the ClientHello, so an alert
#: first must not make the hello behind it "no name").
_RECORD_TYPES = frozenset(range(0x14, 0x19))
_CLIENT_HELLO = 1
_RECORD_MAX = 1 << 14
#: Real clients use one or two records; many tiny ones only cost the checker time.
_RECORDS_MAX = 32
_SERVER_NAME_EXTENSION = 0
_HOST_NAME_TYPE = 0


class Verdict(enum.Enum):
    NEED_MORE = "need-more"
    NO_NAME = "no-name"  # neither TLS nor HTTP/1: nothing to check but the address
    TLS = "tls"  # name: the SNI host_name, or None when the ClientHello has none
    HTTP = "http"  # name: the request's host, or None without one
    MALFORMED = "malformed"  # looks like TLS or HTTP/1 but does not parse: refuse


@dataclass(frozen=True)
class Sniffed:
    verdict: Verdict
    name: str | None = None
    why: str = ""


NEED_MORE = Sniffed(Verdict.NEED_MORE)
NO_NAME = Sniffed(Verdict.NO_NAME)


def _malformed(why: str) -> Sniffed:
    return Sniffed(Verdict.MALFORMED, why=why)


def sniff(data: bytes) -> Sniffed:
    """The verdict on the first `data` a client sent (at most SNIFF_LIMIT bytes count)."""
    data = data[:SNIFF_LIMIT]
    if not data:
        return NEED_MORE
    tls = data[0] == _HANDSHAKE_RECORD or (data[0] in _RECORD_TYPES and data[1:2] in (b"", b"\x03"))
    result = _sniff_tls(data) if tls else _sniff_http(data)
    if result.verdict is Verdict.NEED_MORE and len(data) >= SNIFF_LIMIT:
        return _malformed(f"no complete first message within {SNIFF_LIMIT} bytes")
    return result


# --- names ---------------------------------------------------------------------------

_LABEL = re.compile(rb"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


def normalize_name(raw: bytes) -> str | None:
    """A host name as servers route on it (lower case, no trailing dot), or None for junk.

    IP literals come back in their canonical text form (IPv6 without brackets).
    """
    if raw.startswith(b"[") and raw.endswith(b"]"):
        return _ip_literal(raw[1:-1], version=6)
    name = raw.lower()
    if name.endswith(b"."):
        name = name[:-1]
    if not name or len(name) > 253:
        return None
    if all(_LABEL.fullmatch(label) for label in name.split(b".")):
        literal = _ip_literal(name, version=4)
        return literal if literal is not None else name.decode("ascii")
    return _ip_literal(name, version=6)


def _ip_literal(raw: bytes, *, version: int) -> str | None:
    try:
        address = ipaddress.ip_address(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    return str(address) if address.version == version else None


# --- TLS -----------------------------------------------------------------------------


def _sniff_tls(data: bytes) -> Sniffed:
    """Reassemble the ClientHello from handshake records, then read its SNI."""
    fragments: list[bytes] = []
    gathered = 0
    offset = 0
    needed: int | None = None
    while needed is None or gathered < needed:
        header = data[offset : offset + 5]
        if len(header) >= 2 and header[1] != 3:
            return _malformed("TLS record with a version other than 3.x")
        if len(header) < 5:
            return NEED_MORE
        length = int.from_bytes(header[3:5], "big")
        if header[0] != _HANDSHAKE_RECORD:
            return _malformed("ClientHello interrupted by another record type")
        if not 0 < length <= _RECORD_MAX:
            return _malformed(f"TLS record length {length}")
        if len(fragments) == _RECORDS_MAX:
            return _malformed(f"ClientHello in more than {_RECORDS_MAX} records")
        fragment = data[offset + 5 : offset + 5 + length]
        fragments.append(fragment)
        gathered += len(fragment)
        offset += 5 + length
        if needed is None and gathered >= 4:
            first = b"".join(fragments)
            if first[0] != _CLIENT_HELLO:
                return _malformed("first TLS handshake message is not a ClientHello")
            needed = 4 + int.from_bytes(first[1:4], "big")
            if needed > SNIFF_LIMIT:
                return _malformed(f"ClientHello of {needed} bytes")
        if len(fragment) < length:
            break
    if needed is None or gathered < needed:
        return NEED_MORE
    hello = b"".join(fragments)[4:needed]
    try:
        return Sniffed(Verdict.TLS, _server_name(hello))
    except _Malformed as error:
        return _malformed(str(error))


class _Malformed(ValueError):
    pass


class _Reader:
    """Bounds-checked reads over one ClientHello: every length field is distrusted."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, count: int, what: str) -> bytes:
        end = self.offset + count
        if end > len(self.data):
            raise _Malformed(f"ClientHello truncated in {what}")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def number(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "big")

    def vector(self, size: int, what: str) -> bytes:
        return self.take(self.number(size, what), what)

    def done(self) -> bool:
        return self.offset == len(self.data)


def _server_name(hello: bytes) -> str | None:
    reader = _Reader(hello)
    reader.take(2 + 32, "version and random")
    if len(reader.vector(1, "session id")) > 32:
        raise _Malformed("session id longer than 32 bytes")
    suites = reader.vector(2, "cipher suites")
    if not suites or len(suites) % 2:
        raise _Malformed("cipher suites")
    if not reader.vector(1, "compression methods"):
        raise _Malformed("no compression method")
    if reader.done():
        return None
    extensions = _Reader(reader.vector(2, "extensions"))
    if not reader.done():
        raise _Malformed("bytes after the extensions")
    seen: set[int] = set()
    name: str | None = None
    while not extensions.done():
        kind = extensions.number(2, "extension type")
        body = extensions.vector(2, "extension")
        if kind in seen:
            raise _Malformed(f"extension {kind} appears twice")
        seen.add(kind)
        if kind == _SERVER_NAME_EXTENSION:
            name = _host_name(body)
    return name


def _host_name(extension: bytes) -> str:
    outer = _Reader(extension)
    names = _Reader(outer.vector(2, "server name list"))
    if not outer.done() or names.done():
        raise _Malformed("server name list")
    found: str | None = None
    while not names.done():
        kind = names.number(1, "server name type")
        raw = names.vector(2, "server name")
        if kind != _HOST_NAME_TYPE:
            continue
        if found is not None:
            raise _Malformed("two host names in the server name extension")
        name = normalize_name(raw)
        if name is None:
            raise _Malformed("server name is not a host name")
        found = name
    if found is None:
        raise _Malformed("server name extension without a host name")
    return found


# --- HTTP/1 --------------------------------------------------------------------------

_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_VERSION = re.compile(rb"HTTP/(\d)\.(\d)")
_LINE_START = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]")
_BLANK = re.compile(rb"[ \t]+")
_PRINTABLE_LINE = re.compile(rb"[\x20-\x7e\t\r]*")
_EMPTY_LINE = re.compile(rb"\n\r?\n")
_PORT = re.compile(rb":\d{0,5}")
_ABSOLUTE = re.compile(rb"(?i:https?)://([^/?#]*)")


def _sniff_http(data: bytes) -> Sniffed:
    """An HTTP/1 request line and headers; anything else has no name to check."""
    start = len(data) - len(data.lstrip(b"\r\n"))  # servers skip empty lines first
    line_end = data.find(b"\n", start)
    if line_end < 0:
        rest = data[start:]
        if rest and not (_LINE_START.match(rest) and _PRINTABLE_LINE.fullmatch(rest)):
            return NO_NAME
        return NEED_MORE
    line = data[start:line_end].rstrip(b"\r")
    # Judged by its words: nginx and Python's http.server skip blanks around the line, so
    # `GET / HTTP/1.1 ` is a request to them, and must not pass as "no name".
    parts = _BLANK.split(line.strip(b" \t"))
    if len(parts) < 2 or not parts[-1].upper().startswith(b"HTTP/"):
        return NO_NAME
    if len(parts) != 3 or _BLANK.split(line) != parts:  # a lenient server may still read it
        return _malformed("HTTP request line")
    method, target, version = parts
    if not _TOKEN.fullmatch(method) or not _VERSION.fullmatch(version):
        return _malformed("HTTP request line")
    if version != b"HTTP/1.1" and version != b"HTTP/1.0":
        return _malformed(f"HTTP version {version.decode('ascii')}")
    head_end = _headers_end(data, line_end + 1)
    if head_end is None:
        return NEED_MORE
    try:
        host = _request_host(method, target, data[line_end + 1 : head_end])
    except _Malformed as error:
        return _malformed(str(error))
    return Sniffed(Verdict.HTTP, host)


def _headers_end(data: bytes, start: int) -> int | None:
    """Where the header block ends (before its empty line), bare LF accepted as servers do.

    One regular-expression scan: the checker calls this on every segment received.
    """
    if data[start : start + 1] == b"\n" or data[start : start + 2] == b"\r\n":
        return start
    found = _EMPTY_LINE.search(data, start)
    return None if found is None else found.start() + 1


def _request_host(method: bytes, target: bytes, headers: bytes) -> str | None:
    hosts: list[bytes] = []
    for line in headers.split(b"\n")[:-1]:
        line = line.rstrip(b"\r")
        field, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(field):
            raise _Malformed("HTTP header line")
        if field.lower() == b"host":
            hosts.append(value.strip(b" \t"))
    if len(hosts) > 1:
        raise _Malformed("two Host headers")
    host = _host_of(hosts[0]) if hosts else None
    authority = _target_authority(method, target)
    if authority is None:
        return host
    named = _host_of(authority)
    if hosts and host != named:
        raise _Malformed("Host header differs from the request target")
    return named


def _target_authority(method: bytes, target: bytes) -> bytes | None:
    """The authority of an absolute-form (or CONNECT) target: it overrides Host."""
    if method == b"CONNECT":
        return target
    if target.startswith(b"/") or target == b"*":
        return None
    absolute = _ABSOLUTE.match(target)
    if absolute is None:
        raise _Malformed("request target")
    authority = absolute.group(1)
    if b"@" in authority:
        raise _Malformed("user information in the request target")
    return authority


def _host_of(authority: bytes) -> str | None:
    """The host of `host[:port]` or `[v6][:port]`; None for an empty Host."""
    if not authority:
        return None
    if authority.startswith(b"["):
        close = authority.find(b"]")
        host, port = authority[: close + 1], authority[close + 1 :] if close > 0 else b"?"
    else:
        colon = authority.find(b":")
        host, port = (authority, b"") if colon < 0 else (authority[:colon], authority[colon:])
    if port and not _PORT.fullmatch(port):
        raise _Malformed("port in the request host")
    name = normalize_name(host)
    if name is None:
        raise _Malformed("request host is not a host name")
    return name
