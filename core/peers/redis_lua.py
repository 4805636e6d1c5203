"""Peer (b): Redis 7 with a Lua script doing the accrual, driven pipelined via redis-py.

`RedisServer` runs a private redis-server on 127.0.0.1 (a free port, no persistence),
installing Debian's `redis-server` with apt-get when it is missing. The script holds
the program's rules as Lua tables and keeps the idempotency key and the member hash
in one atomic step. Lua numbers are doubles: exact while base x multipliers stays
below 2^53, which holds for any basket under about 10^5 yuan.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from core.peers.apt import ensure_program
from core.peers.rules import DUPLICATE, REJECTED, Rules, rules_of
from core.program import Program
from core.types import Payment

PIPELINE_DEPTH = 1000  # commands per round trip
START_TIMEOUT_S = 15.0

LUA = r"""
local tx, mk = KEYS[1], KEYS[2]
if redis.call('EXISTS', tx) == 1 then return -1 end
local mchid, appid, ccy = ARGV[1], ARGV[2], ARGV[3]
local total, payer, t = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local chpct = CHPCT[mchid]
if chpct == nil or APPS[appid] == nil then return -2 end
if payer == -1 then payer = total end
local basis = payer
if ccy ~= HOME then
  local fx = FX[ccy]
  if fx == nil then return -2 end
  basis = math.floor(payer * fx[1] / fx[2])
end
local tier = tonumber(redis.call('HGET', mk, 't') or 0)
local pts = 0
if basis >= MIN_ORDER then
  local camp = 100
  local hour = math.floor(((t + OFFSET) % 86400) / 3600)
  local channel = CHANNEL[mchid]
  for _, c in ipairs(CAMPAIGNS) do
    if c[1] <= t and t < c[2] and c[6][channel] and c[3] <= hour and hour < c[4]
       and c[5] > camp then
      camp = c[5]
    end
  end
  local x = basis * PPU * chpct * TIER_PCT[tier + 1] * camp
  pts = math.floor(x / 100000000)
  if (pts + 1) * 100000000 <= x then pts = pts + 1 end
  if pts * 100000000 > x then pts = pts - 1 end
  if CAP > 0 and pts > CAP then pts = CAP end
end
redis.call('SET', tx, pts)
local q
if SPEND_BASIS then q = basis else q = pts end
q = redis.call('HINCRBY', mk, 'q', q)
redis.call('HINCRBY', mk, 'p', pts)
while tier + 2 <= #TIER_AT and q >= TIER_AT[tier + 2] do tier = tier + 1 end
redis.call('HSET', mk, 't', tier)
return pts
"""


def _lua_str(s: str) -> str:
    """`s` as a Lua string literal (anything but [A-Za-z0-9-_. ] as a 3-digit escape)."""
    out = []
    for b in s.encode():
        ch = chr(b)
        out.append(ch if ch.isascii() and (ch.isalnum() or ch in "-_. ") else f"\\{b:03d}")
    return '"' + "".join(out) + '"'


def lua_script(r: Rules) -> str:
    """The accrual script for rules `r`: the program as Lua tables, then the logic."""
    def table(d: dict[str, Any]) -> str:
        return "{" + ", ".join(f"[{_lua_str(k)}] = {v}" for k, v in d.items()) + "}"

    camps = ", ".join(
        f"{{{s}, {e}, {hf}, {ht}, {pct}, {table(dict.fromkeys(sorted(ch), 'true'))}}}"
        for s, e, hf, ht, pct, ch in r.campaigns)
    head = "\n".join([
        f"local CHPCT = {table(r.channel_pct)}",
        f"local CHANNEL = {table({m: _lua_str(c) for m, c in r.channel_of.items()})}",
        f"local APPS = {table(dict.fromkeys(sorted(r.appids), 'true'))}",
        f"local HOME = {_lua_str(r.home_currency)}",
        f"local FX = {table({k: f'{{{n}, {d}}}' for k, (n, d) in r.fx.items()})}",
        f"local PPU, MIN_ORDER, CAP = {r.points_per_unit}, {r.min_order_fen}, {r.cap}",
        f"local OFFSET = {r.utc_offset_s}",
        f"local CAMPAIGNS = {{{camps}}}",
        f"local TIER_PCT = {{{', '.join(map(str, r.tier_pct))}}}",
        f"local TIER_AT = {{{', '.join(map(str, r.tier_threshold))}}}",
        f"local SPEND_BASIS = {'true' if r.spend_basis else 'false'}",
    ])
    return head + LUA


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_redis_server() -> str:
    """The path of redis-server, installing Debian's package first when it is missing.

    Raises RuntimeError when it cannot be installed.
    """
    return ensure_program("redis-server", "redis-server")


class RedisServer:
    """A private redis-server on 127.0.0.1, without persistence; use as a context manager."""

    def __init__(self) -> None:
        """Prepare a server on a free port (started by `start`)."""
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> RedisServer:
        """Install if needed, start and wait until it answers PING; raises RuntimeError."""
        import redis

        exe = ensure_redis_server()
        self._dir = tempfile.TemporaryDirectory(prefix="paymember-redis-")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self._dir.name, "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        client = redis.Redis(host="127.0.0.1", port=self.port)
        try:
            while True:
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server (it was started by us; nothing is saved)."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> RedisServer:
        """Start the server."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop the server."""
        self.stop()


class RedisLuaPeer:
    """The accrual as a Lua script in Redis, one EVALSHA per payment, pipelined."""

    name = "redis_lua"

    def __init__(self, program: Program, port: int, depth: int = PIPELINE_DEPTH) -> None:
        """Connect to the server on 127.0.0.1:`port`, flush it and load the script."""
        import redis

        self.rules = rules_of(program)
        self.client = redis.Redis(host="127.0.0.1", port=port)
        self.client.flushall()
        self.sha = self.client.script_load(lua_script(self.rules))
        self.depth = depth

    def run(self, payments: Sequence[Payment]) -> float:
        """Apply `payments` in order, `depth` per round trip; returns payments per second."""
        sha, depth = self.sha, self.depth
        self.results: list[int] = []
        t0 = time.perf_counter()
        for start in range(0, len(payments), depth):
            pipe = self.client.pipeline(transaction=False)
            for p in payments[start:start + depth]:
                pipe.evalsha(sha, 2, "t:" + p.transaction_id, "m:" + p.openid, p.mchid,
                             p.appid, p.currency, p.total_fen, p.payer_total_fen, p.time_s)
            self.results.extend(pipe.execute())
        return len(payments) / (time.perf_counter() - t0)

    def pay(self, p: Payment) -> int:
        """Apply one payment; returns its points, DUPLICATE or REJECTED."""
        out = int(self.client.evalsha(self.sha, 2, "t:" + p.transaction_id, "m:" + p.openid,
                                      p.mchid, p.appid, p.currency, p.total_fen,
                                      p.payer_total_fen, p.time_s))
        assert out >= 0 or out in (DUPLICATE, REJECTED)  # the script returns -1, -2
        return out

    def state(self) -> dict[str, tuple[int, int]]:
        """Each member's (points, tier)."""
        out = {}
        for key in self.client.scan_iter(match="m:*", count=10_000):
            p, t = self.client.hmget(key, "p", "t")
            out[key.decode()[2:]] = (int(p), int(t))
        return out

    def close(self) -> None:
        """Close the connection."""
        self.client.close()


__all__ = ["RedisLuaPeer", "RedisServer", "ensure_redis_server", "lua_script"]
