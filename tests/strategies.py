"""Hypothesis strategies shared by the property tests: shoppers, payments, refunds,
bindings and engagement events over the example program."""

from __future__ import annotations

from hypothesis import strategies as st

from core import Binding, Engagement, Payment, Refund
from tests.helpers import APP, APP2, MINI, STORE, T0, TRANSIT, oid, uid

SHOPPERS = 6
PEOPLE = 3
amounts = st.integers(min_value=1, max_value=200_000)
times = st.integers(min_value=T0, max_value=T0 + 86_400 * 3)


@st.composite
def payments(draw: st.DrawFn, n: int) -> Payment:
    """Payment number `n` by one of a few shoppers of either app."""
    who = draw(st.integers(0, SHOPPERS - 1))
    app, mch = draw(st.sampled_from([(APP, STORE), (APP, TRANSIT), (APP2, MINI)]))
    total = draw(amounts)
    payer = draw(st.one_of(st.just(-1), st.integers(0, total)))
    return Payment(f"42{n:030d}", app, mch, oid(who + (100 if app == APP2 else 0)), total,
                   draw(times), payer_total_fen=payer)


@st.composite
def refunds_of(draw: st.DrawFn, p: Payment, first: int) -> list[Refund]:
    """Partial refunds of `p` (possibly adding up to its whole total, possibly more)."""
    k = draw(st.integers(0, 3))
    cuts = sorted(draw(st.lists(st.integers(1, p.total_fen), min_size=k, max_size=k)))
    whole = draw(st.booleans())
    parts, last = [], 0
    for c in cuts:
        if c > last:
            parts.append(c - last)
            last = c
    if whole and last < p.total_fen:
        parts.append(p.total_fen - last)
    return [Refund(f"50{first + j:030d}", p.transaction_id, STORE, amt, p.total_fen,
                   p.time_s + 60 * (j + 1)) for j, amt in enumerate(parts)]


@st.composite
def bindings(draw: st.DrawFn) -> list[Binding]:
    """Each shopper's openids bound (or not) to one of a few people: never two unionids."""
    out = []
    for who in range(SHOPPERS):
        for app, off in ((APP, 0), (APP2, 100)):
            if draw(st.booleans()):
                out.append(Binding(app, oid(who + off), uid(who % PEOPLE), draw(times)))
    return out


@st.composite
def engagements(draw: st.DrawFn, n: int) -> Engagement:
    """Engagement event number `n`."""
    kind = draw(st.sampled_from(["follow", "visit", "ugc", "checkin", "referral"]))
    who = draw(st.integers(0, SHOPPERS - 1))
    referred = oid((who + 1) % SHOPPERS) if kind == "referral" else ""
    return Engagement(f"ev{n}", APP, oid(who), kind, draw(times), referred)


@st.composite
def feeds(draw: st.DrawFn) -> list[object]:
    """A feed: payments, their refunds, bindings and events, in a drawn order."""
    pays = [draw(payments(n)) for n in range(draw(st.integers(1, 12)))]
    items: list[object] = list(pays)
    for k, p in enumerate(pays):
        items += draw(refunds_of(p, k * 10))
    items += draw(bindings())
    items += [draw(engagements(n)) for n in range(draw(st.integers(0, 6)))]
    return draw(st.permutations(items))
