"""AEAD_AES_256_GCM for the notification `resource`, as WeChat Pay API v3 uses it."""

from __future__ import annotations

import binascii

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ALGORITHM = "AEAD_AES_256_GCM"
APIV3_KEY_BYTES = 32
NONCE_CHARS = 12


class DecryptError(ValueError):
    """The resource cannot be decrypted: bad base64, bad nonce, or a failed tag check."""


class Aead:
    """Encrypts and decrypts resources with the 32-byte APIv3 `key`; raises ValueError if short."""

    def __init__(self, key: bytes) -> None:
        if len(key) != APIV3_KEY_BYTES:
            raise ValueError(f"the APIv3 key must be {APIV3_KEY_BYTES} bytes, got {len(key)}")
        self._gcm = AESGCM(key)

    def encrypt(self, plaintext: bytes, nonce: str, associated_data: str) -> str:
        """Return base64(ciphertext + tag) of `plaintext` under the 12-char `nonce`."""
        raw = self._gcm.encrypt(nonce.encode(), plaintext, associated_data.encode())
        return binascii.b2a_base64(raw, newline=False).decode()

    def decrypt(self, ciphertext: str, nonce: str, associated_data: str) -> bytes:
        """Return the plaintext of base64 `ciphertext`; raises DecryptError when it fails."""
        if len(nonce) != NONCE_CHARS:
            raise DecryptError(f"nonce must be {NONCE_CHARS} characters")
        try:
            raw = binascii.a2b_base64(ciphertext, strict_mode=True)
            return self._gcm.decrypt(nonce.encode(), raw, associated_data.encode())
        except (binascii.Error, ValueError, InvalidTag, UnicodeEncodeError):
            raise DecryptError("resource decryption failed") from None
