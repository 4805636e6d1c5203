"""Request authentication: timestamp window, signature, then the nonce replay cache.

Notifications (/v3) are signed over `timestamp\\nnonce\\nbody\\n` as WeChat Pay
signs them; the internal API (/v1) is signed over
`METHOD\\nPATH\\ntimestamp\\nnonce\\nbody\\n`, as WeChat Pay's own request
signatures, so that a signature cannot be moved to another path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from loadtests import errors, limits
from loadtests.nonces import REPLAYED, NonceCache
from loadtests.signing import Verifier

TIMESTAMP = b"wechatpay-timestamp"
NONCE = b"wechatpay-nonce"
SIGNATURE = b"wechatpay-signature"
SERIAL = b"wechatpay-serial"
TIMESTAMP_DIGITS_MAX = 12


def request_message(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """Return the bytes an internal-API (/v1) signature covers."""
    return b"%s\n%s\n%s\n%s\n%s\n" % (method.encode(), path.encode(), timestamp.encode(),
                                       nonce.encode(), body)


class Authenticator:
    """Checks signed requests with `verifier` (None: signatures off, loopback benchmarks only).

    The nonce cache is checked last, so unsigned junk cannot fill it.
    """

    def __init__(self, verifier: Verifier | None, nonces: NonceCache | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.verifier, self.clock = verifier, clock
        self.nonces = nonces if nonces is not None else NonceCache()

    def check(self, headers: Mapping[bytes, bytes] | Iterable[tuple[bytes, bytes]],
              body: bytes, request_line: tuple[str, str] | None = None) -> None:
        """Accept the request or raise errors.Rejection.

        `headers` are the request's (lower-case name, value) pairs, or a dict of them;
        `request_line` is (method, path) for /v1 requests and None for /v3 notifications.
        """
        verifier = self.verifier
        if verifier is None:
            return
        h = headers if type(headers) is dict else dict(headers)
        try:
            ts_raw, nonce_raw, sig_raw = h[TIMESTAMP], h[NONCE], h[SIGNATURE]
        except KeyError:
            raise errors.missing_headers() from None
        if (len(ts_raw) > TIMESTAMP_DIGITS_MAX or not ts_raw.isdigit()
                or not 0 < len(nonce_raw) <= limits.NONCE_LEN_MAX or not nonce_raw.isascii()
                or len(sig_raw) > limits.SIGNATURE_LEN_MAX or not sig_raw.isascii()):
            raise errors.bad_signature()
        ts, now = int(ts_raw), int(self.clock())
        nonces = self.nonces
        if abs(now - ts) > nonces.window_s or ts <= nonces.floor_s:
            raise errors.stale_timestamp()
        # The signed message is head + body + "\n", hashed in parts: a large body
        # (a batch) is not copied.
        if request_line is None:
            head = b"%s\n%s\n" % (ts_raw, nonce_raw)
        else:
            head = b"%s\n%s\n%s\n%s\n" % (request_line[0].encode(), request_line[1].encode(),
                                         ts_raw, nonce_raw)
        if not verifier.verify_parts((head, body, b"\n"), sig_raw,
                                     h.get(SERIAL, b"")[:limits.SERIAL_LEN_MAX]):
            raise errors.bad_signature()
        # The cache holds the nonce's bytes: no decoding on the hot path.
        reason = nonces.check(nonce_raw, ts, now)
        if reason is not None:
            raise errors.replayed_nonce() if reason is REPLAYED else errors.stale_timestamp()
