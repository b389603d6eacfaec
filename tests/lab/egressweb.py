"""The egress lab's hosts: a shared "CDN" address and plain TCP/UDP services (stdlib only).

    python3 egressweb.py --tls ADDR --cert CERT --key KEY --echo-port P [--echo-port P ...] \
        --udp-on ADDR [--udp-on ADDR ...] --banner-port P

* HTTPS on ADDR:443 (the certificate names every site behind the shared address) and HTTP
  on port 80 of every address of the namespace. Both answer any GET with one line,
  `host=<Host header> sni=<TLS server name or -> addr=<local address>`, so a test can tell
  which site a request reached and that a name checker let it through unchanged.
* A server-first service on `--banner-port` (every address): `LAB-BANNER <address>` on
  connect, then echo.
* TCP echo on every `--echo-port`, every address of the namespace; UDP echo on the same
  ports of each `--udp-on` address, one socket per address, so a reply leaves from the
  address the datagram was sent to (a reply from another address of the namespace would
  not match the sandbox's masqueraded flow and never arrive).

Prints `READY <pid>` once every socket is bound; SIGTERM ends it. No name lookups.
"""

from __future__ import annotations

import argparse
import http.server
import os
import signal
import socketserver
import ssl
import sys
import threading
from typing import Any


class HostEcho(http.server.BaseHTTPRequestHandler):
    """Answers which name the client asked for (Host and SNI) and where it arrived."""

    def do_GET(self) -> None:
        sni = getattr(self.connection, "alca_sni", None) or "-"
        local = self.connection.getsockname()[0]
        body = f"host={self.headers.get('Host', '-')} sni={sni} addr={local}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Web(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext | None) -> None:
        self.context = context
        super().__init__(address, HostEcho)

    def server_bind(self) -> None:
        # The stock server_bind asks for the host's FQDN, which stalls without a resolver.
        self.socket.bind(self.server_address)
        self.server_name, self.server_port = "cdn.alca.test", self.server_address[1]

    def finish_request(self, request: Any, client_address: Any) -> None:
        """The TLS handshake runs in the connection's thread: a client that stalls (or a
        checker that resets it) never blocks the accept loop."""
        request.settimeout(10)
        if self.context is not None:
            try:
                request = self.context.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                return
        super().finish_request(request, client_address)


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def remember(sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: Any) -> None:
        sock.alca_sni = name  # type: ignore[union-attr]

    context.sni_callback = remember
    return context


class TcpEcho(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(10)
        while data := self.request.recv(4096):
            self.request.sendall(data)


class Banner(TcpEcho):
    def handle(self) -> None:
        local = self.request.getsockname()[0]
        self.request.sendall(f"LAB-BANNER {local}\r\n".encode())
        super().handle()


class UdpEcho(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        sock.sendto(data, self.client_address)


class ThreadingTcp(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class ThreadingUdp(socketserver.ThreadingUDPServer):
    daemon_threads = True
    allow_reuse_address = True


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tls", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--echo-port", type=int, action="append", default=[])
    parser.add_argument("--udp-on", action="append", default=[])
    parser.add_argument("--banner-port", type=int, required=True)
    args = parser.parse_args()
    any_address = "0.0.0.0"  # noqa: S104 (inside the lab's namespace only)
    servers: list[socketserver.BaseServer] = [
        Web((args.tls, 443), tls_context(args.cert, args.key)),
        Web((any_address, 80), None),
        ThreadingTcp((any_address, args.banner_port), Banner),
    ]
    for port in args.echo_port:
        servers.append(ThreadingTcp((any_address, port), TcpEcho))
        servers += [ThreadingUdp((address, port), UdpEcho) for address in args.udp_on]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(f"READY {os.getpid()}", flush=True)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
