"""Service settings from the command line and the environment, checked before start-up."""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from loadtests import keys, limits
from loadtests.aead import Aead
from loadtests.app import ServiceConfig
from loadtests.auth import Authenticator
from loadtests.signing import HmacVerifier, RsaVerifier, Verifier


class StartupError(Exception):
    """The service cannot start; the message says why (port in use, missing key, bad dir)."""


@dataclass(slots=True)
class Settings:
    """Everything `paymember serve` needs; `verify` is "hmac", "rsa" or "off"."""

    host: str = "127.0.0.1"
    port: int = 8080
    shards: int = 1
    programs: tuple[str, ...] = ()
    journal: str | None = None
    fsync: str = "always"  # journal fsync policy: always, <N>ms, off
    verify: str = "hmac"
    allow_plaintext: bool = False
    urls_file: str | None = None
    columns_payments_max: int = limits.COLUMNS_PAYMENTS_MAX  # a /v1/payments:columns body's
    columns_body_bytes_max: int = limits.COLUMNS_BODY_BYTES_MAX
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))


def is_loopback(host: str) -> bool:
    """True when `host` is a loopback address or "localhost"."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check(settings: Settings) -> None:
    """Raise StartupError for settings that cannot work, before anything is bound."""
    if not 1 <= settings.shards <= limits.SHARDS_MAX:
        raise StartupError(f"--shards must be 1..{limits.SHARDS_MAX}")
    if not 1 <= settings.columns_payments_max <= limits.COLUMNS_PAYMENTS_LIMIT:
        raise StartupError(f"--columns-max must be 1..{limits.COLUMNS_PAYMENTS_LIMIT}")
    if not 1 <= settings.columns_body_bytes_max <= limits.COLUMNS_BODY_BYTES_LIMIT:
        raise StartupError(f"--columns-body-max must be 1..{limits.COLUMNS_BODY_BYTES_LIMIT}")
    if settings.verify not in ("hmac", "rsa", "off"):
        raise StartupError(f"unknown verification {settings.verify!r}")
    if settings.verify == "off" and not is_loopback(settings.host):
        raise StartupError("signature verification can be turned off only on a loopback host")
    if not settings.programs:
        raise StartupError("give at least one --program FILE (a program TOML)")
    for p in settings.programs:
        if not Path(p).is_file():
            raise StartupError(f"program file not found: {p}")
    if settings.journal is not None:
        check_journal_dir(Path(settings.journal))
        from core.journal import FsyncPolicy
        try:
            FsyncPolicy.parse(settings.fsync)
        except ValueError as e:
            raise StartupError(f"--fsync: {e}") from None
    shard_config(settings, 0)  # reads and checks the keys


def check_journal_dir(path: Path) -> None:
    """Create `path` if needed and check it is a writable directory; raises StartupError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".paymember-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise StartupError(f"journal directory {path}: {e.strerror or e}") from None


def shard_config(settings: Settings, shard: int) -> ServiceConfig:
    """Return the ServiceConfig of `shard`, reading keys from settings.env; raises StartupError."""
    try:
        k = keys.load_keys(settings.env)
    except keys.KeyConfigError as e:
        raise StartupError(str(e)) from None
    notify: Verifier | None = None
    api: Verifier | None = None
    if settings.verify != "off":
        if k.hmac_key is None:
            raise StartupError(f"missing key: set {keys.HMAC_KEY} or {keys.HMAC_KEY}_FILE "
                               "(or --insecure-no-verify on loopback)")
        api = notify = HmacVerifier(k.hmac_key)
        if settings.verify == "rsa":
            if k.public_key is None:
                raise StartupError(
                    f"missing key: set {keys.PLATFORM_PUBLIC_KEY}_FILE for --verify rsa")
            notify = RsaVerifier(k.public_key, k.serial)
    if k.apiv3_key is None and not settings.allow_plaintext:
        raise StartupError(f"missing key: set {keys.APIV3_KEY} or {keys.APIV3_KEY}_FILE "
                           "(or --plaintext to accept plaintext resources)")
    aead = Aead(k.apiv3_key) if k.apiv3_key is not None else None
    from core import load_program
    ids = []
    for p in settings.programs:
        try:
            ids.append(load_program(p).id)
        except ValueError as e:
            raise StartupError(str(e)) from None
    return ServiceConfig(notify_auth=Authenticator(notify), api_auth=Authenticator(api),
                         aead=aead, allow_plaintext=settings.allow_plaintext,
                         programs=tuple(ids), shard=shard, shards=settings.shards,
                         columns_payments_max=settings.columns_payments_max,
                         columns_body_bytes_max=settings.columns_body_bytes_max)


def bind(host: str, port: int) -> socket.socket:
    """Return a listening TCP socket on (host, port); raises StartupError when it cannot bind."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise StartupError(f"cannot resolve host {host!r}: {e.strerror}") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {e.strerror}"
                           + (" (port in use)" if e.errno == 98 else "")) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
