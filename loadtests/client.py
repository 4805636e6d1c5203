"""Client side of the service: builds signed, encrypted notifications and signed API requests.

Shared by the tests, the Locust users and the trace replayer, so that all of
them speak exactly what the service checks.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from typing import Any

import orjson

from core import PaymentColumns
from core.payment_columns import encode
from loadtests.aead import ALGORITHM, Aead
from loadtests.auth import request_message
from loadtests.notify import PLAINTEXT
from loadtests.payloads import rfc3339
from loadtests.signing import Signer, signed_message

NOTIFY_TRANSACTION = "/v3/notify/transaction"
NOTIFY_REFUND = "/v3/notify/refund"
BINDINGS = "/v1/bindings"
ENROLLMENTS = "/v1/enrollments"
EVENTS_BATCH = "/v1/events:batch"
PAYMENTS_COLUMNS = "/v1/payments:columns"
MEMBERS = "/v1/members/"
ADMIN_STATE = "/v1/admin/state"

Headers = dict[str, str]


class Notifier:
    """Builds requests: `signer` None sends no signature, `aead` None sends plaintext resources.

    `clock` gives the signing time (epoch seconds); nonces are unique per Notifier.
    """

    def __init__(self, signer: Signer | None, aead: Aead | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.signer, self.aead, self.clock = signer, aead, clock
        self._prefix = secrets.token_hex(8)
        self._count = itertools.count()

    def nonce(self) -> str:
        """Return a nonce never returned before by this Notifier (at most 32 chars)."""
        return f"{self._prefix}{next(self._count):x}"

    def notify_headers(self, body: bytes) -> Headers:
        """Return the Wechatpay-* headers signing notification `body` now."""
        return self._headers(body, None)

    def api_headers(self, method: str, path: str, body: bytes = b"") -> Headers:
        """Return the headers signing an internal-API request `method path` with `body`."""
        return self._headers(body, (method, path))

    def _headers(self, body: bytes, line: tuple[str, str] | None) -> Headers:
        headers = {"Content-Type": "application/json"}
        if self.signer is None:
            return headers
        ts, nonce = str(int(self.clock())), self.nonce()
        message = signed_message(ts, nonce, body) if line is None else \
            request_message(line[0], line[1], ts, nonce, body)
        headers.update({"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce,
                        "Wechatpay-Signature": self.signer.sign(message),
                        "Wechatpay-Serial": self.signer.serial})
        return headers

    def columns(self, cols: PaymentColumns) -> tuple[bytes, Headers]:
        """Return the body and signed headers of a `/v1/payments:columns` request of `cols`
        (core.payment_columns' compact form, 1..limits.COLUMNS_PAYMENTS_MAX payments)."""
        body = encode(cols)
        headers = self.api_headers("POST", PAYMENTS_COLUMNS, body)
        headers["Content-Type"] = "application/octet-stream"
        return body, headers

    def envelope(self, event_type: str, original_type: str, data: dict[str, Any],
                 event_id: str, create_time_s: int) -> bytes:
        """Return the JSON body of a notification carrying `data` (encrypted when possible)."""
        plain = orjson.dumps(data)
        if self.aead is None:
            resource: dict[str, Any] = {"algorithm": PLAINTEXT, "plaintext": data,
                                        "original_type": original_type}
        else:
            nonce = secrets.token_urlsafe(9)  # 12 characters, as the platform's
            resource = {"original_type": original_type, "algorithm": ALGORITHM,
                        "ciphertext": self.aead.encrypt(plain, nonce, original_type),
                        "associated_data": original_type, "nonce": nonce}
        summary = "支付成功" if original_type == "transaction" else "退款成功"
        return orjson.dumps({"id": event_id, "create_time": rfc3339(create_time_s),
                             "resource_type": "encrypt-resource", "event_type": event_type,
                             "summary": summary, "resource": resource})

    def payment(self, data: dict[str, Any], create_time_s: int | None = None) -> bytes:
        """Return a TRANSACTION.SUCCESS notification body for transaction resource `data`."""
        t = int(self.clock()) if create_time_s is None else create_time_s
        return self.envelope("TRANSACTION.SUCCESS", "transaction", data,
                             "EV-" + str(data.get("transaction_id")), t)

    def refund(self, data: dict[str, Any], create_time_s: int | None = None) -> bytes:
        """Return a REFUND.<status> notification body for refund resource `data`."""
        t = int(self.clock()) if create_time_s is None else create_time_s
        return self.envelope("REFUND." + str(data.get("refund_status", "SUCCESS")), "refund",
                             data, "EV-" + str(data.get("refund_id")), t)
