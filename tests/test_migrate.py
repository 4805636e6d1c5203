"""Moving an account between engines (core/migrate.py): what the target holds after the
move and a binding equals what one Engine fed every input holds, and refunds, events,
spends and redeliveries after the move behave as they do there."""

from __future__ import annotations

import orjson
import pytest

from core import Code, Engine, check_invariants
from core.feed import parse
from core.migrate import adjust_stats, book, export_accounts, import_account, owns_payment
from core.sharded_feed import refund_data
from tests.helpers import APP, APP2, DAY, MINI, STORE, T0, oid, pay, program, uid

PROGRAM = program()
O1, O2, U = oid(1), oid(2), uid(1)
TOTALS = ("payments", "refunds", "accounts", "members", "shadow_members", "points_issued",
          "points_outstanding", "points_available", "points_pending", "shadow_points",
          "reversal_shortfall", "ledger_entries", "idempotency_keys", "counts", "tiers")


def _sum_stats(*engs: Engine) -> dict:
    from core.sharded_routes import sum_stats

    return sum_stats([adjust_stats(e, e.stats()) for e in engs])


def _feed_before() -> list[tuple[str, str, object]]:
    """(where, kind, input) before the move: `src` holds O1's history, `dst` U's (via O2)."""
    ev = {"event_id": "e1", "appid": APP, "openid": O1, "kind": "checkin", "time_s": T0 + 5}
    return [
        ("src", "pay", pay(1, 1, total=5000)),
        ("src", "pay", pay(2, 1, total=880_000, t=T0 + 60)),
        ("src", "event", ev),
        ("src", "refund", refund_data(pay(1, 1, total=5000), 1, 40, T0 + 100)),
        ("dst", "binding", {"appid": APP2, "openid": O2, "unionid": U, "time_s": T0 + 200}),
        ("dst", "pay", pay(3, 2, total=30_000, t=T0 + 300, app=APP2, mch=MINI)),
        ("dst", "enrollment", {"program": PROGRAM.id, "unionid": U, "time_s": T0 + 400}),
    ]


def _apply(eng: Engine, kind: str, x: object) -> tuple[Code, int]:
    o = eng.pay(x) if kind == "pay" else eng.submit(kind, x)
    return o.code, o.points


@pytest.fixture
def moved() -> tuple[Engine, Engine, Engine]:
    """(one Engine fed everything, the source after the move, the target after the move
    and the binding)."""
    one, src, dst = Engine([PROGRAM]), Engine([PROGRAM]), Engine([PROGRAM])
    for where, kind, x in _feed_before():
        want = _apply(one, kind, x)
        assert want[0] is Code.APPLIED, (kind, want)
        assert _apply(src if where == "src" else dst, kind, x) == want
    bind = {"appid": APP, "openid": O1, "unionid": U, "time_s": T0 + 500}
    (blob,) = export_accounts(src, [("0-0", APP, O1, 1, T0 + 500)])
    assert blob is not None
    blob = orjson.loads(orjson.dumps(blob))  # it travels as JSON
    assert import_account(dst, blob)
    assert not import_account(dst, blob)  # a second delivery changes nothing
    assert _apply(dst, "binding", bind) == _apply(one, "binding", bind)
    return one, src, dst


def test_move_then_bind_equals_one_engine(moved: tuple[Engine, Engine, Engine]) -> None:
    one, src, dst = moved
    assert dst.balance(PROGRAM.id, unionid=U) == one.balance(PROGRAM.id, unionid=U)
    assert dst.balance(PROGRAM.id, appid=APP, openid=O1) == one.balance(
        PROGRAM.id, appid=APP, openid=O1)
    s_one, s_two = one.stats(), _sum_stats(src, dst)
    assert {k: s_two[k] for k in TOTALS} == {k: s_one[k] for k in TOTALS}
    assert not check_invariants(src) and not check_invariants(dst)
    assert not owns_payment(src, pay(1, 1).transaction_id)
    assert owns_payment(dst, pay(1, 1).transaction_id)
    assert book(src)["forward"] == {(APP, O1): 1}


def test_after_the_move_refunds_redeliveries_and_time_agree(
        moved: tuple[Engine, Engine, Engine]) -> None:
    one, src, dst = moved
    p1, p2 = pay(1, 1, total=5000), pay(2, 1, total=880_000, t=T0 + 60)
    later = [
        ("refund", refund_data(p1, 1, 40, T0 + 100)),  # redelivered: duplicate
        ("refund", refund_data(p1, 2, 60, T0 + 700)),  # the rest of it
        ("refund", refund_data(p2, 3, 50, T0 + 800)),  # half of a pending payment
        ("event", {"event_id": "e1", "appid": APP, "openid": O1, "kind": "checkin",
                   "time_s": T0 + 5}),  # redelivered
        ("event", {"event_id": "e2", "appid": APP, "openid": O1, "kind": "checkin",
                   "time_s": T0 + 600}),  # the day's cap, counted before the move
        ("event", {"event_id": "e3", "appid": APP, "openid": O1, "kind": "ugc",
                   "time_s": T0 + 600}),
        ("pay", p2),  # redelivered
        ("pay", pay(4, 1, total=7000, t=T0 + 900)),
        ("advance", {"time_s": T0 + 20 * DAY}),
        ("spend", {"spend_id": "s1", "program": PROGRAM.id, "points": 10, "unionid": U,
                   "time_s": T0 + 20 * DAY}),
        ("spend", {"spend_id": "s1", "program": PROGRAM.id, "points": 10, "unionid": U,
                   "time_s": T0 + 20 * DAY}),
        ("advance", {"time_s": T0 + 400 * DAY}),
    ]
    codes = []
    for kind, x in later:
        want = _apply(one, kind, x)
        if kind == "advance":
            src.submit(kind, x)
        assert _apply(dst, kind, x) == want, (kind, x)
        codes.append(want[0])
    assert codes.count(Code.DUPLICATE) == 4 and Code.CAP_REACHED in codes
    assert dst.balance(PROGRAM.id, unionid=U) == one.balance(PROGRAM.id, unionid=U)
    s_one, s_two = one.stats(), _sum_stats(src, dst)
    assert {k: s_two[k] for k in TOTALS} == {k: s_one[k] for k in TOTALS}
    assert s_two["idempotency_keys_forgotten"] == s_one["idempotency_keys_forgotten"]
    assert not check_invariants(src) and not check_invariants(dst)


def test_bound_accounts_and_unknown_apps_do_not_move() -> None:
    eng = Engine([PROGRAM])
    eng.submit("binding", {"appid": APP, "openid": O1, "unionid": U, "time_s": T0})
    before = eng.snapshot()
    assert export_accounts(eng, [("0-0", APP, O1, 1, T0), ("0-1", "nope", O2, 1, T0)]) == \
        [None, None]
    assert eng.snapshot() == before


def test_an_unknown_openid_moves_as_a_forwarding_entry_only() -> None:
    src, dst = Engine([PROGRAM]), Engine([PROGRAM])
    (blob,) = export_accounts(src, [("3-0", APP, O2, 1, T0)])
    assert blob is not None and "cols" not in blob
    assert import_account(dst, blob)
    assert book(src)["forward"] == {(APP, O2): 1} and not book(dst)["forward"]
    assert src.stats()["accounts"] == dst.stats()["accounts"] == 0
    assert parse("binding", {"appid": APP, "openid": O2, "unionid": U, "time_s": T0})
    assert STORE


def test_forwards_route_moved_pairs_and_only_those() -> None:
    from core.routing import Forwards, shard_of

    f = Forwards(3)
    openids = [oid(n) for n in range(60)]
    for o in openids[::4]:
        f.set(APP, o, (shard_of(o, 3) + 1) % 3)
    f.set(APP, openids[0], shard_of(openids[0], 3))  # moved back home: no entry
    apps = [APP2 if n % 8 == 4 else APP for n in range(60)]  # same openid, other app
    got = f.shards_of(apps, openids).tolist()
    assert got == [f.shard(a, o) for a, o in zip(apps, openids, strict=True)]
    moved = [n for n in range(60) if n % 4 == 0 and n and apps[n] == APP]
    assert [n for n in range(60) if got[n] != shard_of(openids[n], 3)] == moved
    assert len(f) == 14 and openids[0] not in f.openids
