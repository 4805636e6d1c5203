"""Moving one shopper's account from one engine to another (a shard to a shard).

`export_accounts` takes unbound accounts, each named by (appid, openid), out of an
engine: it returns each one's whole state as plain data (a "blob") and leaves a
tombstone (an empty, unreachable account) and a forwarding entry (appid, openid) ->
target shard behind. `import_account` recreates the account from its blob in another
engine, exactly as it was: balances, point lots with their days, pending payments
with their refund state, the idempotency keys of its events, refunds and spends,
engagement caps, visit days, invitation, coupons, tier qualification (running and
closed months), membership and tier. A binding applied there afterwards merges it
with the engine's own `bind`, so the result is what one Engine would hold.

Both steps keep every engine's invariants: the balances leave through MOVE_OUT
ledger rows and arrive through MOVE_IN rows (docs/sharding.md), and the source keeps
its payment records (their pending points zeroed) so its payment numbers stay dense.
Each engine's bookkeeping of moves lives in `book(eng)` (plain data, in snapshots).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from core import payments
from core.idempotency import EVENTS, REFUNDS, SPENDS
from core.ledger import CAUSE_EVENT
from core.payments import P_ACCT, P_PENDING, P_PROG, P_TIME
from core.types import Bucket, Entry

if TYPE_CHECKING:
    from core.engine import Engine

_OUT, _IN = int(Entry.MOVE_OUT), int(Entry.MOVE_IN)
_BUCKETS = (("avail", int(Bucket.AVAILABLE)), ("pend", int(Bucket.PENDING)),
            ("shad", int(Bucket.SHADOW)), ("shad_pend", int(Bucket.SHADOW_PENDING)))
_MOVED_COUPON = 3  # a coupon's state on the engine it left (0 open, 1 redeemed, 2 expired)


def book(eng: Engine) -> dict[str, Any]:
    """The engine's record of moves (made on first use; part of its snapshot):

    seq: exports made here; outbox: move id -> [target, blob] exported and not yet
    confirmed imported; forward: (appid, openid) -> shard its account went to;
    moved_in: move ids imported here; dead: tombstone accounts; pays_out: payment
    numbers whose records went with an account; keys_out: idempotency keys copied out
    ((kind, id)); rows: MOVE_OUT and MOVE_IN ledger rows written here.
    """
    b = eng.__dict__.get("moves")
    if b is None:
        b = eng.__dict__["moves"] = {"seq": 0, "outbox": {}, "forward": {}, "moved_in": set(),
                                     "dead": set(), "pays_out": set(), "keys_out": [],
                                     "rows": 0}
    return b


def export_accounts(eng: Engine, items: Sequence[tuple[str, str, str, int, int]]
                    ) -> list[dict[str, Any] | None]:
    """Take the accounts of `items` = [(move id, appid, openid, target shard, time_s)] out
    of `eng`, in order; returns each one's blob, or None when it cannot move (unknown
    app, an account bound to a unionid, or one exported already: it stays where it is).

    An openid with no account here gives a blob without state: its forwarding entry
    still says where its account will live. Every blob is kept in the outbox until
    `confirm` says the target has it.
    """
    known = eng.__dict__.get("moves") or {"forward": {}, "dead": set()}
    acc = eng.acc
    found: list[tuple[int, tuple[str, str, str, int, int], int | None]] = []
    out: list[dict[str, Any] | None] = [None] * len(items)
    for k, it in enumerate(items):
        _mid, appid, openid, _to, _t = it
        pi = eng.app_prog.get(appid)
        if pi is None or (appid, openid) in known["forward"]:
            continue
        a = acc.by_app[appid].get(openid)
        if a is not None:
            a = acc.find(a)
            if acc.union_no[a] or a in known["dead"] or eng.merged_from.get(a):
                continue
        found.append((k, it, a))
    if not found:
        return out
    bk = book(eng)
    live = [a for _k, _it, a in found if a is not None]
    gathered = _gather(eng, live) if live else {}
    for k, (mid, appid, openid, to, t), a in found:
        blob: dict[str, Any] = {"id": mid, "appid": appid, "openid": openid,
                                "prog": eng.app_prog[appid], "time_s": t}
        if a is not None:
            blob.update(_take(eng, a, t, mid, gathered[a]))
        bk["forward"][(appid, openid)] = to
        bk["outbox"][mid] = [to, blob]
        bk["seq"] += 1
        out[k] = blob
    return out


def _gather(eng: Engine, accounts: list[int]) -> dict[int, dict[str, list]]:
    """Per account: its payments (numbers), refunds, events, spends and coupons, found by
    one pass over each store for the whole batch."""
    who = set(accounts)
    res: dict[int, dict[str, list]] = {a: {"pays": [], "refunds": [], "events": [],
                                           "spends": [], "coupons": []} for a in accounts}
    want = np.fromiter(who, np.int64, len(who))
    pays = payments.table(eng.pays, eng.pays_wide)
    for i in np.flatnonzero(np.isin(pays[:, P_ACCT], want)).tolist():
        res[int(pays[i, P_ACCT])]["pays"].append(i)
    idem = eng.idem
    tx_of = {}
    for a in accounts:
        for i in res[a]["pays"]:
            tx_of[eng.pay_index.key(i)] = a
    times: dict[tuple[int, str], int] = {}
    wanted: dict[tuple[int, str], int] = {}
    if tx_of:
        for rid, (txid, _fen) in idem.refunds.items():
            a = tx_of.get(txid)
            if a is not None:
                wanted[(REFUNDS, rid)] = a
    for sid, (a, _pts) in idem.spends.items():
        if a in who:
            wanted[(SPENDS, sid)] = a
    rows = eng.ledger.views()
    mine = np.isin(rows["account"], want) & ((rows["cause"] & 7) == CAUSE_EVENT)
    for a, cause in zip(rows["account"][mine].tolist(), rows["cause"][mine].tolist(),
                        strict=True):
        eid = eng.event_ids[cause >> 3]
        if eid in idem.events:
            wanted[(EVENTS, eid)] = a
    del pays, rows
    if wanted:
        for g, lists in idem.gens.items():
            for kind in (EVENTS, REFUNDS, SPENDS):
                for key in lists[kind]:
                    if (kind, key) in wanted:
                        times[(kind, key)] = g * idem.bucket_s
    for (kind, key), a in wanted.items():
        t = times[(kind, key)]
        if kind == REFUNDS:
            txid, fen = idem.refunds[key]
            res[a]["refunds"].append([key, txid, fen, t])
        elif kind == SPENDS:
            res[a]["spends"].append([key, idem.spends[key][1], t])
        else:
            res[a]["events"].append([key, t])
    for cid, cp in eng.coupons.items():
        if cp[4] != _MOVED_COUPON and eng.acc.find(cp[0]) in who:
            res[eng.acc.find(cp[0])]["coupons"].append(cid)
    return res


def _take(eng: Engine, a: int, t: int, mid: str, found: dict[str, list]) -> dict[str, Any]:
    """Account `a`'s state as plain data, leaving it an empty tombstone."""
    acc, bk = eng.acc, book(eng)
    cause = eng.ledger.note("move ", mid)
    cols = []
    for name, bucket in _BUCKETS:
        x = acc.balance(name, a)
        cols.append(x)
        if x:
            acc.put(name, a, 0)
            eng.ledger.add(_OUT, bucket, a, -x, t, cause)
            bk["rows"] += 1
    blob: dict[str, Any] = {"cols": [*cols, acc.qual[a], acc.member[a], acc.tier[a]]}
    acc.put("qual", a, 0)
    acc.member[a] = acc.tier[a] = 0
    blob["lots"] = acc.lots.items(a)
    acc.lots.clear(a)
    blob["visits"] = acc.visit_days(a) if acc.visit_slots else []
    if acc.visit_slots:
        acc.visit_n[a] = 0
    caps = eng.caps.pop(a, {})
    blob["caps"] = [[*key, n] for key, n in caps.items()]
    blob["invited"] = a in eng.invited
    eng.invited.discard(a)
    months = []
    for m, (who, amounts) in list(acc.qual_months.items()):
        hit = who == a
        if hit.any():
            months.append([m, int(amounts[hit].sum())])
            acc.qual_months[m] = (who[~hit], amounts[~hit])
    blob["months"] = months
    pays = []
    keys = eng.pay_index
    for i in found["pays"]:
        row = payments.record(eng.pays, eng.pays_wide, i)
        pays.append([keys.key(i), *row[1:]])
        payments.put(eng.pays, eng.pays_wide, i, P_PENDING, 0)
        bk["pays_out"].add(i)
    blob["pays"] = pays
    blob["refunds"], blob["events"], blob["spends"] = (
        found["refunds"], found["events"], found["spends"])
    bk["keys_out"] += ([[REFUNDS, r[0]] for r in found["refunds"]]
                       + [[EVENTS, e[0]] for e in found["events"]]
                       + [[SPENDS, s[0]] for s in found["spends"]])
    coupons = []
    for cid in found["coupons"]:
        cp = eng.coupons[cid]
        coupons.append([cid, *cp[1:]])
        cp[4] = _MOVED_COUPON
    blob["coupons"] = coupons
    bk["dead"].add(a)
    return blob


def import_account(eng: Engine, blob: dict[str, Any]) -> bool:
    """Recreate the account of `blob` (from `export_accounts`) in `eng`, as it was; False
    (and nothing changes) when this move was imported here already."""
    bk = book(eng)
    if blob["id"] in bk["moved_in"]:
        return False
    bk["moved_in"].add(blob["id"])
    appid, openid = blob["appid"], blob["openid"]
    bk["forward"].pop((appid, openid), None)  # it lives here now
    if "cols" not in blob:
        return True
    acc = eng.acc
    pi, t = blob["prog"], blob["time_s"]
    c = eng.rules[pi]
    apps = acc.by_app[appid]
    old = apps.get(openid)
    b = acc.create(pi)
    apps[openid] = b
    cause = eng.ledger.note("move ", blob["id"])
    *balances, qual, member, tier = blob["cols"]
    acc.member[b], acc.tier[b] = member, tier  # first: it says which balances b holds
    for (name, bucket), x in zip(_BUCKETS, balances, strict=True):
        if x:
            acc.put(name, b, x)
            eng.ledger.add(_IN, bucket, b, x, t, cause)
            bk["rows"] += 1
    acc.put("qual", b, qual)
    for day, pts in blob["lots"]:
        acc.lots.add(b, day, pts)
        if member and c.keep_member_lots:
            heapq.heappush(eng.expiry_heap, (eng.expiry_day(c, day), b))
    if blob["visits"]:
        acc.set_visit_days(b, blob["visits"])
    if blob["caps"]:
        eng.caps[b] = {(k, lv, per): n for k, lv, per, n in blob["caps"]}
    if blob["invited"]:
        eng.invited.add(b)
    for m, amount in blob["months"]:
        who, amounts = acc.qual_months.get(m, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        acc.qual_months[m] = (np.append(who.astype(np.int64), b),
                              np.append(amounts.astype(np.int64), amount))
    for txid, *row in blob["pays"]:
        i = len(eng.pay_index)
        eng.pay_index[txid] = i
        payments.append(eng.pays, eng.pays_wide, (b, *row))
        if row[P_PENDING - 1]:
            eng._push_pending(row[P_TIME - 1] + eng.rules[row[P_PROG - 1]].window_s, i)
    idem = eng.idem
    for rid, txid, fen, rt in blob["refunds"]:
        idem.add_refund(rid, (txid, fen), rt)
    for eid, et in blob["events"]:
        idem.add_event(eid, et)
    for sid, pts, st in blob["spends"]:
        idem.add_spend(sid, (b, pts), st)
    for cid, cpi, stock, expire_s, state in blob["coupons"]:
        eng.coupons[cid] = [b, cpi, stock, expire_s, state]
        if state == 0:
            heapq.heappush(eng.coupon_heap, (expire_s, cid))
    if old is not None and old not in bk["dead"]:
        # The openid already had an account here (a referral names openids of other
        # shards): one shopper, one account, as in one engine.
        eng._merge(acc.find(old), b, t, cause)
    return True


def export_batch(eng: Engine, shard: int, reqs: Sequence[Sequence[Any]]
                 ) -> tuple[dict[str, Any] | None, list[dict[str, Any] | None]]:
    """A shard's export of `reqs` = [[appid, openid, target, time_s]]: each gets the move id
    "<shard>-<n>" (n counted by this engine), then `export_accounts`. Returns the journal
    record to append (None when nothing moved) and the blobs."""
    b = eng.__dict__.get("moves")
    base = 0 if b is None else b["seq"]
    items = [(f"{shard}-{base + k}", ap, op, to, t) for k, (ap, op, to, t) in enumerate(reqs)]
    blobs = export_accounts(eng, items)
    if all(x is None for x in blobs):
        return None, blobs
    book(eng)["seq"] = base + len(items)
    return {"seq": base + len(items), "items": items}, blobs


def replay_move(eng: Engine, kind: str, data: dict[str, Any]) -> None:
    """Apply a journaled move record again: "export" (`export_batch`'s record) or "import"
    (a blob)."""
    if kind == "export":
        export_accounts(eng, [tuple(x) for x in data["items"]])  # type: ignore[misc]
        book(eng)["seq"] = data["seq"]
    else:
        import_account(eng, data)


def outbox(eng: Engine) -> list[list[Any]]:
    """Moves exported here and not yet confirmed imported: [move id, target, blob]."""
    b = eng.__dict__.get("moves")
    return [] if b is None else [[mid, to, blob] for mid, (to, blob) in b["outbox"].items()]


def confirm(eng: Engine, move_ids: Sequence[str]) -> None:
    """Forget the outbox entries of moves whose target has imported them."""
    box = book(eng)["outbox"]
    for mid in move_ids:
        box.pop(mid, None)


def forwards(eng: Engine) -> list[list[Any]]:
    """The engine's forwarding entries as [appid, openid, shard]."""
    b = eng.__dict__.get("moves")
    return [] if b is None else [[ap, op, s] for (ap, op), s in b["forward"].items()]


def owns_payment(eng: Engine, txid: str) -> bool:
    """True when `eng` applied payment `txid` and its record did not move away."""
    i = eng.pay_index.get(txid)
    if i is None:
        return False
    b = eng.__dict__.get("moves")
    return b is None or i not in b["pays_out"]


def adjust_stats(eng: Engine, s: dict[str, Any]) -> dict[str, Any]:
    """`eng.stats()` without what moves leave behind: tombstone accounts, payment records
    and idempotency keys that went with an account, and the move ledger rows."""
    b = eng.__dict__.get("moves")
    if b is None:
        return s
    s["accounts"] -= len(b["dead"])
    s["shadow_members"] -= len(b["dead"])
    s["payments"] -= len(b["pays_out"])
    s["ledger_entries"] -= b["rows"]
    idem = eng.idem
    stores = {EVENTS: idem.events, REFUNDS: idem.refunds, SPENDS: idem.spends}
    here = sum(1 for kind, key in b["keys_out"] if key in stores[kind])
    s["idempotency_keys"] -= here
    s["idempotency_keys_forgotten"] -= len(b["keys_out"]) - here
    return s


__all__ = ["adjust_stats", "book", "confirm", "export_accounts", "export_batch", "forwards",
           "import_account", "outbox", "owns_payment", "replay_move"]
