"""Keys of the service and the load generator, read from environment variables or files.

Keys never live in the repository. Each key `X` is read from `PAYMEMBER_X`
(the key itself) or `PAYMEMBER_X_FILE` (a path to it); giving both is an error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from loadtests.aead import APIV3_KEY_BYTES

HMAC_KEY = "PAYMEMBER_HMAC_KEY"
APIV3_KEY = "PAYMEMBER_APIV3_KEY"
PLATFORM_PUBLIC_KEY = "PAYMEMBER_PLATFORM_PUBLIC_KEY"  # PEM
PLATFORM_PRIVATE_KEY = "PAYMEMBER_PLATFORM_PRIVATE_KEY"  # PEM; load generator only
PLATFORM_SERIAL = "PAYMEMBER_PLATFORM_SERIAL"
HMAC_KEY_BYTES_MIN = 16


class KeyConfigError(ValueError):
    """A key is missing, unreadable or malformed; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Keys:
    """The keys found: shared HMAC key, APIv3 key, platform RSA keys and serial (empty if unset)."""

    hmac_key: bytes | None
    apiv3_key: bytes | None
    public_key: rsa.RSAPublicKey | None
    private_key: rsa.RSAPrivateKey | None
    serial: str


def read_secret(name: str, env: Mapping[str, str] | None = None) -> bytes | None:
    """Return the secret `name` from `env` (default os.environ) or its `_FILE`; None if unset.

    Raises KeyConfigError when both are set or the file cannot be read.
    """
    env = os.environ if env is None else env
    value, path = env.get(name), env.get(name + "_FILE")
    if value and path:
        raise KeyConfigError(f"set either {name} or {name}_FILE, not both")
    if value:
        return value.encode()
    if path:
        try:
            # A trailing newline from `echo key > file` is not part of the key.
            return Path(path).read_bytes().rstrip(b"\r\n")
        except OSError as e:
            raise KeyConfigError(f"{name}_FILE: cannot read {path}: {e.strerror}") from None
    return None


def load_keys(env: Mapping[str, str] | None = None) -> Keys:
    """Read and check every key from `env` (default os.environ); raises KeyConfigError when bad."""
    env = os.environ if env is None else env
    hmac_key = read_secret(HMAC_KEY, env)
    if hmac_key is not None and len(hmac_key) < HMAC_KEY_BYTES_MIN:
        raise KeyConfigError(f"{HMAC_KEY} must be at least {HMAC_KEY_BYTES_MIN} bytes")
    apiv3 = read_secret(APIV3_KEY, env)
    if apiv3 is not None and len(apiv3) != APIV3_KEY_BYTES:
        raise KeyConfigError(f"{APIV3_KEY} must be exactly {APIV3_KEY_BYTES} bytes, "
                             f"got {len(apiv3)}")
    public = private = None
    if (pem := read_secret(PLATFORM_PUBLIC_KEY, env)) is not None:
        try:
            public = serialization.load_pem_public_key(pem)
        except ValueError:
            raise KeyConfigError(f"{PLATFORM_PUBLIC_KEY}: not a PEM public key") from None
        if not isinstance(public, rsa.RSAPublicKey):
            raise KeyConfigError(f"{PLATFORM_PUBLIC_KEY}: not an RSA key")
    if (pem := read_secret(PLATFORM_PRIVATE_KEY, env)) is not None:
        try:
            private = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            raise KeyConfigError(
                f"{PLATFORM_PRIVATE_KEY}: not an unencrypted PEM private key") from None
        if not isinstance(private, rsa.RSAPrivateKey):
            raise KeyConfigError(f"{PLATFORM_PRIVATE_KEY}: not an RSA key")
    serial = (read_secret(PLATFORM_SERIAL, env) or b"").decode(errors="replace")
    return Keys(hmac_key, apiv3, public, private, serial)
