"""A lab HTTPS site: serves a directory over TLS on one address, port 443 (stdlib only).

    python3 tlsweb.py --listen ADDR --cert CERT --key KEY --root DIR

Prints `READY <pid>` once listening; SIGTERM ends it. No name lookups (the stock
HTTPServer asks for the host's FQDN at bind, which stalls without a resolver).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import signal
import ssl
import sys


class Server(http.server.ThreadingHTTPServer):
    def server_bind(self) -> None:
        self.socket.bind(self.server_address)
        self.server_name, self.server_port = "web.alca.test", self.server_address[1]


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--root", required=True)
    args = parser.parse_args()
    handler = functools.partial(Quiet, directory=args.root)
    server = Server((args.listen, 443), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(f"READY {os.getpid()}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
