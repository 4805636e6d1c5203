"""Identity: bindings, merges of shadow histories, conflicting bindings."""

from __future__ import annotations

from core import Binding, Code, Engine, Enrollment, Entry
from tests.helpers import APP, APP2, MINI, T0, oid, pay, uid


def test_activity_before_binding_accrues_to_the_openid(engine: Engine) -> None:
    """Payments by an unknown openid build a shadow account keyed by (appid, openid)."""
    engine.pay(pay(1, 1, 2000))
    bal = engine.balance("quickmart", appid=APP, openid=oid(1))
    assert bal is not None and not bal.member and bal.shadow == 20
    assert engine.balance("quickmart", unionid=uid(1)) is None


def test_binding_gives_the_account_its_unionid(engine: Engine) -> None:
    """Binding an openid with history makes its account the unionid's."""
    engine.pay(pay(1, 1, 2000))
    assert engine.bind(Binding(APP, oid(1), uid(1), T0)).code is Code.APPLIED
    assert engine.balance("quickmart", unionid=uid(1)).shadow == 20
    assert engine.bind(Binding(APP, oid(1), uid(1), T0)).code is Code.DUPLICATE


def test_two_apps_histories_merge_without_loss(engine: Engine) -> None:
    """Openids of two apps bound to one unionid merge; no point lost or counted twice."""
    engine.pay(pay(1, 1, 2000))  # 20 via the mini-program app's openid
    engine.pay(pay(2, 2, 2000, app=APP2, mch=MINI))  # 30 via the official account's openid
    engine.bind(Binding(APP, oid(1), uid(1), T0))
    out = engine.bind(Binding(APP2, oid(2), uid(1), T0))
    assert out.code is Code.APPLIED and out.points == 30
    bal = engine.balance("quickmart", unionid=uid(1))
    assert bal.shadow == 50
    assert engine.balance("quickmart", appid=APP2, openid=oid(2)).shadow == 50
    assert engine.stats()["accounts"] == 1
    kinds = [row.entry for row in engine.history("quickmart", unionid=uid(1))]
    assert kinds.count(Entry.MERGE_IN) == 1 and kinds.count(Entry.MERGE_OUT) == 1


def test_later_payments_of_a_merged_openid_reach_the_survivor(engine: Engine) -> None:
    """After a merge, the old openid's payments credit the unionid's account."""
    engine.pay(pay(1, 1))
    engine.pay(pay(2, 2, app=APP2, mch=MINI))
    engine.bind(Binding(APP, oid(1), uid(1), T0))
    engine.bind(Binding(APP2, oid(2), uid(1), T0))
    engine.pay(pay(3, 2, 2000, app=APP2, mch=MINI))
    assert engine.balance("quickmart", unionid=uid(1)).shadow == 80


def test_binding_to_another_unionid_is_rejected(engine: Engine) -> None:
    """An openid bound to one unionid cannot be bound to another."""
    engine.bind(Binding(APP, oid(1), uid(1), T0))
    before = engine.stats()
    out = engine.bind(Binding(APP, oid(1), uid(2), T0))
    assert out.code is Code.OPENID_BOUND_ELSEWHERE
    assert engine.stats() == before


def test_merge_of_a_member_and_a_shadow_converts_the_shadow_side(engine: Engine) -> None:
    """A member's new openid with shadow history: the shadow points convert on merge."""
    engine.bind(Binding(APP, oid(1), uid(1), T0))
    engine.enroll(Enrollment("quickmart", T0, unionid=uid(1)))  # 200 bonus
    engine.pay(pay(1, 2, 2000, app=APP2, mch=MINI))  # 30 shadow on another app
    engine.bind(Binding(APP2, oid(2), uid(1), T0 + 60))
    bal = engine.balance("quickmart", unionid=uid(1))
    assert (bal.available, bal.shadow, bal.member) == (230, 0, True)


def test_history_traces_every_point_to_its_cause(engine: Engine) -> None:
    """Each ledger row names the input behind it."""
    engine.pay(pay(1, 1, 2000))
    engine.pay(pay(2, 2, 2000, app=APP2, mch=MINI))
    engine.bind(Binding(APP, oid(1), uid(1), T0))
    engine.bind(Binding(APP2, oid(2), uid(1), T0))
    rows = engine.history("quickmart", unionid=uid(1))
    causes = {r.cause for r in rows}
    assert f"payment 42{1:030d}" in causes and f"payment 42{2:030d}" in causes
    assert any(c.startswith("bind ") for c in causes)
    assert sum(r.points for r in rows if r.entry in (Entry.EARN,)) == 50


def test_bad_binding_input_is_named(engine: Engine) -> None:
    """Unknown app, bad ids and bad times are named rejections."""
    assert engine.bind(Binding("wxnope", oid(1), uid(1), T0)).code is Code.UNKNOWN_APP
    assert engine.bind(Binding(APP, "bad id", uid(1), T0)).code is Code.BAD_ID
    assert engine.bind(Binding(APP, oid(1), "", T0)).code is Code.BAD_ID
    assert engine.bind(Binding(APP, oid(1), uid(1), -5)).code is Code.BAD_TIME
    assert engine.stats()["accounts"] == 0
