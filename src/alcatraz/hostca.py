"""The host's trusted CA certificates, for sandboxes that set `[network] host-ca = true`.

Behind a TLS-intercepting proxy or with a private CA, the host trusts a certificate that a
container image's store does not, and every HTTPS client inside fails ("unable to get local
issuer certificate"). alcatraz collects every certificate the host trusts (its system
bundle plus the files its own CA variables name) into one PEM file under the per-project
state (outside the workspace), mounts it read-only at `BUNDLE_TARGET`, and points the
variables that common tools read at it. The image's own store is left alone: programs that
only read /etc/ssl/certs keep the image's trust (docs/config.md says how to add ours there).
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

#: Where the bundle appears inside the sandbox (read-only).
BUNDLE_TARGET: Final = "/etc/alcatraz/ca-certificates.crt"
BUNDLE_NAME: Final = "host-ca.pem"

#: The system bundle of common hosts, first found wins (Debian/Ubuntu/Alpine, Fedora/RHEL,
#: openSUSE, the extracted RHEL one, macOS/BSD).
SYSTEM_BUNDLES: Final = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
)

#: Variables through which tools take a CA file: read on the host for extra CAs, set in the
#: sandbox to the bundle. OpenSSL (and Python's ssl, Ruby, Go, uv), Node.js (added to its
#: built-in roots, so npm and yarn too), requests, pip, git, curl, the AWS CLI and SDKs,
#: cargo, httplib2, gRPC, Nix, Deno, the Google Cloud CLI.
CA_VARIABLES: Final = (
    "SSL_CERT_FILE",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
    "GIT_SSL_CAINFO",
    "CURL_CA_BUNDLE",
    "AWS_CA_BUNDLE",
    "CARGO_HTTP_CAINFO",
    "HTTPLIB2_CA_CERTS",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "NIX_SSL_CERT_FILE",
    "DENO_CERT",
    "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
)

#: Where hosts keep the CAs an administrator added (Debian/Ubuntu, Fedora/RHEL, openSUSE).
LOCAL_ANCHORS: Final = (
    "/usr/local/share/ca-certificates",
    "/etc/pki/ca-trust/source/anchors",
    "/etc/pki/trust/anchors",
)
#: A distribution's unmodified public store (Debian's copy of Mozilla's), for `doctor`.
DEFAULT_STORE_GLOB: Final = "/usr/share/ca-certificates/mozilla/*.crt"

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----")


def certificates(data: bytes) -> list[bytes]:
    """The PEM certificates in `data`, normalised to LF line ends."""
    return [match.replace(b"\r\n", b"\n") for match in _PEM.findall(data)]


def _read(path: str, limit: int = 8 << 20) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(limit)
    except OSError:
        return b""


def host_sources(environ: Mapping[str, str]) -> list[str]:
    """The host's CA files: its system bundle, then the files its CA variables name."""
    sources = [next((p for p in SYSTEM_BUNDLES if os.path.isfile(p)), "")]
    for name in CA_VARIABLES:
        value = environ.get(name, "")
        if value and os.path.isfile(value):
            sources.append(value)
    return [s for s in dict.fromkeys(sources) if s]


def bundle(sources: Iterable[str]) -> bytes:
    """Every distinct certificate of `sources`, in order, as one PEM bundle."""
    seen: dict[bytes, None] = {}
    for source in sources:
        for cert in certificates(_read(source)):
            seen.setdefault(cert, None)
    return b"\n".join(seen) + b"\n" if seen else b""


def write_bundle(state_dir: Path, environ: Mapping[str, str]) -> Path | None:
    """Write (or refresh) the project's bundle; None when the host has no CA file at all.

    Rewritten in place, never replaced, so a running sandbox's bind mount sees updates.
    """
    data = bundle(host_sources(environ))
    if not data:
        return None
    path = state_dir / BUNDLE_NAME
    state_dir.mkdir(parents=True, exist_ok=True)
    if _read(str(path)) != data:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, data)
            os.fchmod(fd, 0o644)  # the engine's daemon and the sandbox's users read it
        finally:
            os.close(fd)
    return path


def sandbox_env(user_env: Iterable[str]) -> dict[str, str]:
    """The CA variables for the sandbox, except those the configuration sets itself."""
    return {name: BUNDLE_TARGET for name in CA_VARIABLES if name not in user_env}


def fingerprint(cert: bytes) -> str:
    return hashlib.sha256(cert).hexdigest()[:16]


def extra_authorities(environ: Mapping[str, str]) -> tuple[int, list[str]]:
    """How many CAs the host trusts beyond a default public store, and where they are.

    Compared with the distribution's unmodified store when it has one; otherwise the CAs an
    administrator added in the usual anchor directories count.
    """
    default_files = glob.glob(DEFAULT_STORE_GLOB)
    sources = host_sources(environ)
    if default_files:
        public = {c for f in default_files for c in certificates(_read(f))}
        extra: dict[bytes, str] = {}
        for source in sources:
            for cert in certificates(_read(source)):
                if cert not in public:
                    extra.setdefault(cert, source)
        return len(extra), sorted(set(extra.values()))
    anchors = [
        str(p)
        for directory in LOCAL_ANCHORS
        if os.path.isdir(directory)
        for p in sorted(Path(directory).rglob("*"))
        if p.is_file() and certificates(_read(str(p)))
    ]
    return len(anchors), anchors
