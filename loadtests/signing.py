"""Signatures over `timestamp\\nnonce\\nbody\\n`: HMAC-SHA256 (shared key) or RSA-SHA256.

Signers are used by the load generator and the tests; verifiers by the service.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def signed_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """Return the bytes a signature covers for `timestamp`, `nonce` and `body`."""
    return b"%s\n%s\n%s\n" % (timestamp.encode(), nonce.encode(), body)


class Signer(Protocol):
    """Signs a message; `scheme` names the algorithm for the Wechatpay-Serial header."""

    serial: str

    def sign(self, message: bytes) -> str:
        """Return the base64 signature of `message`."""
        ...


class Verifier(Protocol):
    """Checks a base64 signature over a message."""

    def verify(self, message: bytes, signature: str | bytes, serial: str | bytes) -> bool:
        """Return True when `signature` (base64) signs `message` with the key named `serial`."""
        ...

    def verify_parts(self, parts: tuple[bytes, ...], signature: str | bytes,
                     serial: str | bytes) -> bool:
        """`verify` of the message `b"".join(parts)` (a large body need not be copied)."""
        ...


def _b64(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).decode()


def _unb64(text: str | bytes) -> bytes | None:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        return None


class HmacSigner:
    """HMAC-SHA256 signer with shared `key`; `serial` is sent as Wechatpay-Serial."""

    def __init__(self, key: bytes, serial: str = "hmac") -> None:
        self.key, self.serial = key, serial

    def sign(self, message: bytes) -> str:
        """Return the base64 HMAC-SHA256 of `message`."""
        return _b64(hmac.digest(self.key, message, "sha256"))


class HmacVerifier:
    """HMAC-SHA256 verifier with shared `key` (the serial is not checked)."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        # HMAC(k, m) = H(k^opad || H(k^ipad || m)) (RFC 2104): the two keyed SHA-256
        # states are computed once, and each check copies them (C calls only).
        block = hashlib.sha256().block_size
        padded = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def verify(self, message: bytes, signature: str | bytes, serial: str | bytes) -> bool:
        """Return True when `signature` is the base64 HMAC-SHA256 of `message`.

        Compares base64 texts (constant time): a non-canonical encoding of the right
        digest is refused, which signers never produce.
        """
        return self.verify_parts((message,), signature, serial)

    def verify_parts(self, parts: tuple[bytes, ...], signature: str | bytes,
                     serial: str | bytes) -> bool:
        """`verify` of the message `b"".join(parts)`, hashed part by part (no copy)."""
        inner = self._inner.copy()
        for part in parts:
            inner.update(part)
        outer = self._outer.copy()
        outer.update(inner.digest())
        expected = binascii.b2a_base64(outer.digest(), newline=False)
        if isinstance(signature, str):
            if not signature.isascii():
                return False
            signature = signature.encode()
        return hmac.compare_digest(expected, signature)


class RsaSigner:
    """RSA-SHA256 (PKCS#1 v1.5) signer with the platform's `private_key`, as WeChat Pay v3."""

    def __init__(self, private_key: rsa.RSAPrivateKey, serial: str) -> None:
        self.key, self.serial = private_key, serial

    def sign(self, message: bytes) -> str:
        """Return the base64 RSA-SHA256 signature of `message`."""
        return _b64(self.key.sign(message, padding.PKCS1v15(), hashes.SHA256()))


class RsaVerifier:
    """RSA-SHA256 verifier with the platform's public key; checks the serial when one is set."""

    def __init__(self, public_key: rsa.RSAPublicKey, serial: str = "") -> None:
        self.key, self.serial = public_key, serial

    def verify(self, message: bytes, signature: str | bytes, serial: str | bytes) -> bool:
        """Return True when `signature` is a valid RSA-SHA256 signature of `message`."""
        return self.verify_parts((message,), signature, serial)

    def verify_parts(self, parts: tuple[bytes, ...], signature: str | bytes,
                     serial: str | bytes) -> bool:
        """`verify` of the message `b"".join(parts)`."""
        message = b"".join(parts)
        if isinstance(serial, bytes):
            serial = serial.decode("ascii", "replace")
        if self.serial and serial != self.serial:
            return False
        raw = _unb64(signature)
        if raw is None:
            return False
        try:
            self.key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True
