"""The compact payments form: any payments survive encode/decode and a journal round trip."""

from __future__ import annotations

import itertools
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from core.journal import Journal
from core.journal_format import Record
from core.payment_block import decode_block, decode_run
from core.payment_block import from_columns as block_of
from core.payment_columns import decode, encode, from_payments
from core.recovery import replay
from core.types import Payment

# Any text, NULs and non-ASCII included: the encoder must fall back, never corrupt.
text = st.text(max_size=12)
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
payments = st.builds(Payment, text, st.sampled_from(["wxa", "wxb", "wx\x00c"]), text, text,
                     ints, ints, ints, st.sampled_from(["CNY", "JPY"]), text, text, text,
                     st.lists(text, max_size=3).map(tuple))


@given(st.lists(payments, min_size=1, max_size=40))
@settings(max_examples=150, deadline=None)
def test_encode_decode_round_trip(ps: list[Payment]) -> None:
    """decode(encode(columns)) gives back exactly the payments, in order."""
    assert list(decode(encode(from_payments(ps))).rows()) == ps


@given(st.lists(st.tuples(st.booleans(), payments), min_size=1, max_size=30),
       st.integers(1, 7))
@settings(max_examples=40, deadline=None)
def test_journal_round_trip(items: list[tuple[bool, Payment]], every: int) -> None:
    """Payments appended one by one or as columns, committed at random, replay in order."""
    with tempfile.TemporaryDirectory() as d:
        with Journal.open(d, "off") as j:
            for k, (as_columns, p) in enumerate(items):
                if as_columns:
                    j.append_payments(from_payments([p]))
                else:
                    j.append_payment(p)
                if k % every == 0:
                    j.commit()
        got: list[Payment] = []
        replay(d, 0, lambda rec: got.extend(rec.payments().rows()))
    assert got == [p for _, p in items]


def test_decode_rejects_garbage() -> None:
    """A payments record that does not parse raises ValueError, never a wrong payment."""
    good = encode(from_payments([Payment("t1", "a", "m", "o", 1, 2)]))
    for bad in (good[:-1], good + b"x", good[:30], b"\xff" * len(good)):
        try:
            decode(bad)
        except ValueError:
            continue
        raise AssertionError(f"decoded garbage {bad!r}")


_ENGINE_FIELDS = ("transaction_id", "appid", "mchid", "openid", "currency", "coupon_ids")


@given(st.lists(payments, min_size=1, max_size=40))
@settings(max_examples=150, deadline=None)
def test_block_decode_and_build_keep_every_field_the_engine_reads(ps: list[Payment]) -> None:
    """A journal record decoded as a block, and a block built from columns, hold the same
    payments (ids with NULs and non-ASCII characters included)."""
    cols = from_payments(ps)
    for blk in (decode_block(encode(cols)), block_of(cols)):
        back = blk.columns()
        for name in _ENGINE_FIELDS:
            assert getattr(back, name) == getattr(cols, name), name
        for name in ("total_fen", "time_s", "payer_total_fen"):
            assert getattr(back, name).tolist() == getattr(cols, name).tolist(), name
        assert blk.ascii == all(s.isascii() for s in cols.transaction_id + cols.openid)


def test_block_decode_rejects_garbage() -> None:
    """A payments record that does not parse raises ValueError as a block too."""
    good = encode(from_payments([Payment("t1", "a", "m", "o", 1, 2), Payment("t\u00e92", "a",
                                                                              "m", "o2", 1, 2)]))
    for bad in (good[:-1], good + b"x", good[:30], b"\xff" * len(good),
                good.replace("\u00e9".encode(), b"\xff\xfe")):
        try:
            decode_block(bad)
        except ValueError:
            continue
        raise AssertionError(f"decoded garbage {bad!r}")


@given(st.lists(payments, min_size=1, max_size=40), st.lists(st.integers(0, 40), max_size=5))
@settings(max_examples=150, deadline=None)
def test_run_decode_is_the_records_one_after_another(ps: list[Payment],
                                                     cuts: list[int]) -> None:
    """Records decoded as one run hold the payments of each record in turn, names and ids
    as they were (NULs, non-ASCII, coupons), whether views of one buffer or not."""
    bounds = sorted({0, len(ps), *(c for c in cuts if 0 < c < len(ps))})
    records = [encode(from_payments(ps[a:b])) for a, b in itertools.pairwise(bounds)]
    joined = memoryview(b"".join(records))
    views, at = [], 0
    for r in records:
        views.append(joined[at:at + len(r)])
        at += len(r)
    want = from_payments(ps)
    for parts in (records, views):
        blk = decode_run(parts)
        back = blk.columns()
        for name in _ENGINE_FIELDS:
            assert getattr(back, name) == getattr(want, name), name
        for name in ("total_fen", "time_s", "payer_total_fen"):
            assert getattr(back, name).tolist() == getattr(want, name).tolist(), name
        assert blk.ascii == all(s.isascii() for s in want.transaction_id + want.openid)
        assert len(set(blk.appids)) == len(blk.appids)  # each name once in a run


def test_run_decode_rejects_garbage_in_any_record() -> None:
    """A run with a record that does not parse raises ValueError."""
    good = encode(from_payments([Payment("t1", "a", "m", "o", 1, 2), Payment("t\u00e92", "a",
                                                                              "m", "o2", 1, 2)]))
    for bad in (good[:-1], good + b"x", good[:30], b"\xff" * len(good), good[:10],
                good.replace("\u00e9".encode(), b"\xff\xfe")):
        for parts in ([good, bad], [bad, good], [bad]):
            try:
                decode_run(parts)
            except ValueError:
                continue
            raise AssertionError(f"decoded garbage {bad!r}")


@given(st.lists(st.tuples(st.sampled_from(["payment", "columns", "event"]), payments),
                min_size=1, max_size=30), st.integers(1, 7), st.integers(1, 12))
@settings(max_examples=40, deadline=None)
def test_merged_replay_passes_the_same_inputs(items: list[tuple[str, Payment]], every: int,
                                              merge: int) -> None:
    """Replay merging payments records gives the same inputs in the same order, with seqs
    that follow on, no merged record past `merge` payments, and never across another kind."""
    with tempfile.TemporaryDirectory() as d:
        with Journal.open(d, "off", segment_bytes_max=600) as j:
            for k, (how, p) in enumerate(items):
                if how == "event":
                    j.append("event", b"{}")
                elif how == "columns":
                    j.append_payments(from_payments([p]))
                else:
                    j.append_payment(p)
                if k % every == 0:
                    j.commit()
        got: list[object] = []
        seqs: list[tuple[int, int]] = []

        def take(rec: Record) -> None:
            seqs.append((rec.seq, rec.count))
            assert rec.count <= merge or not rec.more
            got.extend(rec.payments().rows() if rec.kind == "payments" else [rec.kind])

        report = replay(d, 0, take, merge_payments=merge)
    assert got == [p if how != "event" else "event" for how, p in items]
    assert [s for s, _ in seqs] == list(itertools.accumulate([0] + [c for _, c in seqs[:-1]]))
    assert report.inputs == len(items) == report.end_seq
