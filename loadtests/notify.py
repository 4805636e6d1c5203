"""Reading a notification's body: the envelope, then its resource, decrypted or plaintext.

The envelope is checked in one pass and a detailed message is built only on
failure; the resource is AEAD_AES_256_GCM-encrypted with the APIv3 key, or, only
when configured, plaintext.
"""

from __future__ import annotations

from typing import NoReturn

from loadtests import errors
from loadtests.aead import ALGORITHM, Aead, DecryptError
from loadtests.body import loads
from loadtests.errors import Rejection

PAYMENT_EVENTS = frozenset({"TRANSACTION.SUCCESS"})
REFUND_EVENTS = frozenset({"REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"})
PLAINTEXT = "NONE"  # resource.algorithm of a plaintext resource, when configured


class ResourceReader:
    """Returns a notification's decrypted resource; `aead` None: no APIv3 key configured."""

    __slots__ = ("aead", "allow_plaintext")

    def __init__(self, aead: Aead | None, allow_plaintext: bool) -> None:
        self.aead, self.allow_plaintext = aead, allow_plaintext

    def read(self, body: bytes, event_types: frozenset[str]) -> dict:
        """Return the resource of envelope `body` whose event_type is one of `event_types`;
        raises Rejection 400 naming what is wrong."""
        env = loads(body)
        event_type, res = env.get("event_type"), env.get("resource")
        # orjson makes exact types, so `type(x) is str` is the isinstance check here.
        if not (type(event_type) is str and event_type in event_types
                and type(env.get("id")) is str and type(res) is dict):
            envelope_fault(env, event_types)
        algorithm = res.get("algorithm")
        if algorithm == ALGORITHM:
            ct, nonce, ad = res.get("ciphertext"), res.get("nonce"), res.get("associated_data", "")
            if not (type(ct) is str and type(nonce) is str and type(ad) is str):
                raise errors.bad_type("resource ciphertext, nonce, associated_data must be strings")
            aead = self.aead
            if aead is None:
                raise Rejection(400, "no_apiv3_key",
                                "encrypted resource but no APIv3 key configured")
            try:
                plain = aead.decrypt(ct, nonce, ad)
            except DecryptError as e:
                raise Rejection(400, "decrypt_failed", str(e)) from None
            return loads(plain)
        if algorithm == PLAINTEXT and self.allow_plaintext:
            data = res.get("plaintext")
            if type(data) is not dict:
                raise errors.bad_type("resource.plaintext must be an object")
            return data
        raise errors.bad_value(f"resource.algorithm must be {ALGORITHM}")


def envelope_fault(env: dict, event_types: frozenset[str]) -> NoReturn:
    """Raise the rejection naming what is wrong with notification envelope `env`."""
    event_type = env.get("event_type")
    if not isinstance(event_type, str):
        raise errors.bad_type("event_type must be a string")
    if event_type not in event_types:
        raise errors.bad_value(f"unexpected event_type {event_type[:40]!r}")
    if not isinstance(env.get("id"), str):
        raise errors.bad_type("id must be a string")
    raise errors.bad_type("resource must be an object")
