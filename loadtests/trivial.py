"""The reference for benchmarks: the same server answering `{"code":"SUCCESS"}` and nothing more.

It reads the whole body as the service does, so the difference between the two
is exactly the service's own work (signature, decryption, parsing, the engine).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from loadtests.asgi import SUCCESS_BODY

_HEADERS = [(b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(SUCCESS_BODY))]


async def trivial_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer every HTTP request 200 `{"code":"SUCCESS"}` after reading its body."""
    if scope["type"] != "http":
        return
    more = True
    while more:  # bounded by the request's own body
        msg = await receive()
        more = msg.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": SUCCESS_BODY})


def main() -> None:
    """Serve the trivial app on 127.0.0.1 (free port, written to --urls-file) until signalled."""
    from loadtests.server import serve_socket
    from loadtests.settings import bind

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--urls-file", required=True)
    args = ap.parse_args()
    sock = bind("127.0.0.1", 0)
    # Written whole, then renamed: the bench polls for the file and must not read it half done.
    tmp = Path(args.urls_file + ".tmp")
    tmp.write_text(json.dumps({"urls": [f"http://127.0.0.1:{sock.getsockname()[1]}"]}))
    tmp.replace(args.urls_file)
    serve_socket(trivial_app, sock)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
