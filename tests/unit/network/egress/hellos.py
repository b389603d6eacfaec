"""Real ClientHellos for the name checker's tests, made by this Python's OpenSSL."""

from __future__ import annotations

import contextlib
import ssl


def client_hello(server_hostname: str | None, *, alpn_padding: int = 0) -> bytes:
    """The first flight of a TLS client, as it would go on the wire.

    `alpn_padding` adds that many 200-byte ALPN names: a ClientHello larger than one TCP
    segment, as post-quantum key shares make it.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if alpn_padding:
        context.set_alpn_protocols(
            [f"{index:03d}".ljust(200, "p") for index in range(alpn_padding)]
        )
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def refragment(first_flight: bytes, size: int) -> bytes:
    """The same ClientHello carried in handshake records of at most `size` bytes each."""
    assert first_flight[0] == 0x16
    length = int.from_bytes(first_flight[3:5], "big")
    message = first_flight[5 : 5 + length]
    version = first_flight[1:3]
    records = [
        b"\x16" + version + len(chunk).to_bytes(2, "big") + chunk
        for chunk in (message[start : start + size] for start in range(0, len(message), size))
    ]
    return b"".join(records) + first_flight[5 + length :]
