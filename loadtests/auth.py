"""Request authentication: timestamp window, signature, then the nonce replay cache.

Notifications (/v3) are signed over `timestamp\\nnonce\\nbody\\n` as WeChat Pay
signs them; the internal API (/v1) is signed over
`METHOD\\nPATH\\ntimestamp\\nnonce\\nbody\\n`, as WeChat Pay's own request
signatures, so that a signature cannot be moved to another path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from loadtests import errors, limits
from loadtests.nonces import NonceCache
from loadtests.signing import Verifier

TIMESTAMP = b"wechatpay-timestamp"
NONCE = b"wechatpay-nonce"
SIGNATURE = b"wechatpay-signature"
SERIAL = b"wechatpay-serial"
_WANTED = frozenset({TIMESTAMP, NONCE, SIGNATURE, SERIAL})


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

    def check(self, headers: Iterable[tuple[bytes, bytes]], body: bytes,
              request_line: tuple[str, str] | None = None) -> None:
        """Accept the request or raise errors.Rejection.

        `request_line` is (method, path) for /v1 requests and None for /v3 notifications.
        """
        if self.verifier is None:
            return
        found: dict[bytes, bytes] = {}
        for name, value in headers:
            if name in _WANTED:
                found[name] = value
        try:
            ts_raw, nonce_raw, sig_raw = found[TIMESTAMP], found[NONCE], found[SIGNATURE]
        except KeyError:
            raise errors.missing_headers() from None
        if (len(ts_raw) > 12 or not ts_raw.isdigit() or not nonce_raw
                or len(nonce_raw) > limits.NONCE_LEN_MAX
                or len(sig_raw) > limits.SIGNATURE_LEN_MAX):
            raise errors.bad_signature()
        ts, now = int(ts_raw), int(self.clock())
        if abs(now - ts) > self.nonces.window_s or ts <= self.nonces.floor_s:
            raise errors.stale_timestamp()
        try:
            timestamp, nonce = ts_raw.decode("ascii"), nonce_raw.decode("ascii")
            signature = sig_raw.decode("ascii")
            serial = found.get(SERIAL, b"")[:limits.SERIAL_LEN_MAX].decode("ascii")
        except UnicodeDecodeError:
            raise errors.bad_signature() from None
        if request_line is None:
            message = b"%s\n%s\n%s\n" % (ts_raw, nonce_raw, body)
        else:
            message = request_message(request_line[0], request_line[1], timestamp, nonce, body)
        if not self.verifier.verify(message, signature, serial):
            raise errors.bad_signature()
        reason = self.nonces.check(nonce, ts, now)
        if reason == "replayed nonce":
            raise errors.replayed_nonce()
        if reason is not None:
            raise errors.stale_timestamp()
