"""The batch paths: the columnar payments endpoint and the JSON batch's runs of payments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from core import Engine, check_invariants, from_payments, load_program, open_engine, shard_of
from core.feed import parse
from loadtests import (
    Aead,
    Authenticator,
    HmacSigner,
    HmacVerifier,
    NonceCache,
    Notifier,
    Service,
    ServiceConfig,
    payment_data,
    refund_data,
)
from loadtests.client import EVENTS_BATCH, PAYMENTS_COLUMNS
from loadtests.inprocess import call_app as call
from loadtests.limits import COLUMNS_BODY_BYTES_MAX, COLUMNS_PAYMENTS_MAX
from loadtests.settings import Settings, StartupError, check

HMAC_KEY = b"test-hmac-key-0123456789abcdef!!"
APIV3_KEY = b"0123456789abcdef0123456789abcdef"
PROGRAM = "scenarios/load_program.toml"
APPID, STORE = "wxload00000000001", "1900000001"
NOW = 1_700_000_000


def openid(m: int) -> str:
    return f"oBatchTest_openid_{m:011d}"


def pay(txid: str, m: int = 0, total: int = 1000, mchid: str = STORE) -> dict:
    return payment_data(txid, APPID, mchid, openid(m), total, NOW)


def make_service(engine: Engine | None = None, journal: Any = None, shards: int = 1,
                 shard: int = 0, **columns_limits: int) -> Service:
    config = ServiceConfig(notify_auth=Authenticator(HmacVerifier(HMAC_KEY), NonceCache(),
                                                     lambda: NOW),
                           api_auth=Authenticator(HmacVerifier(HMAC_KEY), NonceCache(),
                                                  lambda: NOW),
                           aead=Aead(APIV3_KEY), programs=("loadshop",), shard=shard,
                           shards=shards, **columns_limits)
    engine = engine or Engine([load_program(PROGRAM)])
    return Service(config, engine, journal, shard_of=shard_of, check_invariants=check_invariants)


@pytest.fixture
def client() -> Notifier:
    return Notifier(HmacSigner(HMAC_KEY), Aead(APIV3_KEY), clock=lambda: NOW)


def columns_of(datas: list[dict]) -> Any:
    return from_payments([parse("payment", d) for d in datas])


def post_columns(app: Service, c: Notifier, cols: Any) -> tuple[int, Any]:
    body, headers = c.columns(cols)
    return call(app, "POST", PAYMENTS_COLUMNS, body, headers)


def post_batch(app: Service, c: Notifier, events: list) -> tuple[int, Any]:
    body = orjson.dumps({"events": events})
    return call(app, "POST", EVENTS_BATCH, body, c.api_headers("POST", EVENTS_BATCH, body))


def state(engine: Engine) -> tuple[dict, list]:
    """What two engines fed the same inputs must agree on."""
    balances = [engine.balance("loadshop", appid=APPID, openid=openid(m)) for m in range(8)]
    return engine.stats(), balances


def test_columns_apply_like_payments_one_by_one(client: Notifier) -> None:
    """A columnar body of payments leaves the engine as submitting each one would."""
    datas = [pay(f"C{i:05d}", m=i % 8, total=100 + 37 * i) for i in range(300)]
    svc = make_service()
    status, body = post_columns(svc, client, columns_of(datas))
    assert status == 200 and body["results"] == {"applied": 300} and body["rejected"] == []
    ref = Engine([load_program(PROGRAM)])
    for d in datas:
        assert ref.submit("payment", d).ok
    assert state(svc.engine) == state(ref)
    assert check_invariants(svc.engine) == []


def test_columns_count_duplicates_and_list_rejections_by_index(client: Notifier) -> None:
    """Duplicates are acknowledged; a payment the engine refuses is listed with its index."""
    svc = make_service()
    post_columns(svc, client, columns_of([pay("D1"), pay("D2")]))
    datas = [pay("D1"), pay("D3"), pay("D4", mchid="1999999999"), pay("D5")]
    status, body = post_columns(svc, client, columns_of(datas))
    assert status == 200
    assert body["results"] == {"duplicate": 1, "applied": 2, "unknown_merchant": 1}
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(2, "unknown_merchant")]
    assert svc.engine.stats()["payments"] == 4


def test_columns_rejections(client: Notifier) -> None:
    """Bad signature 401, unparsable body 400, too many 400, oversized 413, wrong shard 421."""
    svc = make_service()
    body, headers = client.columns(columns_of([pay("E1")]))
    assert call(svc, "POST", PAYMENTS_COLUMNS, body + b"x", headers)[0] == 401
    junk = b"\x05\x00\x00\x00" + b"\x00" * 40
    assert call(svc, "POST", PAYMENTS_COLUMNS, junk,
                client.api_headers("POST", PAYMENTS_COLUMNS, junk))[0] == 400
    many = (COLUMNS_PAYMENTS_MAX + 1).to_bytes(4, "little") + b"\x00" * 40
    status, answer = call(svc, "POST", PAYMENTS_COLUMNS, many,
                          client.api_headers("POST", PAYMENTS_COLUMNS, many))
    assert status == 400 and "payments a request" in answer["message"]
    big = b"\x00" * (COLUMNS_BODY_BYTES_MAX + 1)
    assert call(svc, "POST", PAYMENTS_COLUMNS, big,
                client.api_headers("POST", PAYMENTS_COLUMNS, big))[0] == 413
    owner = shard_of(openid(0), 2)
    other = make_service(shards=2, shard=1 - owner)
    assert post_columns(other, client, columns_of([pay("E2")]))[0] == 421
    assert other.engine.stats()["payments"] == 0
    assert svc.engine.stats()["payments"] == 0


def test_json_batch_runs_keep_order_with_other_kinds(client: Notifier) -> None:
    """Payments around a refund, a malformed payment and a duplicate: same results and state
    as submitting each event alone, rejections listed by their index in the request."""
    events: list[Any] = [{"kind": "payment", "data": pay(f"J{i}", m=i % 8)} for i in range(5)]
    events.append({"kind": "refund", "data": refund_data("RJ1", "J1", STORE, 500, 1000, NOW)})
    events.append({"kind": "payment", "data": {"transaction_id": 5}})
    events += [{"kind": "payment", "data": pay("J1")}, {"kind": "payment", "data": pay("J9")}]
    events.append({"kind": "refund", "data": refund_data("RJ9", "J9", STORE, 1000, 1000, NOW)})
    svc = make_service()
    status, body = post_batch(svc, client, events)
    assert status == 200
    ref = Engine([load_program(PROGRAM)])
    expected: dict[str, int] = {}
    for ev in events:
        code = str(ref.submit(ev["kind"], ev["data"]).code)
        expected[code] = expected.get(code, 0) + 1
    assert body["results"] == expected
    assert [r["index"] for r in body["rejected"]] == [6]
    assert state(svc.engine) == state(ref)


def test_journaled_batches_recover_to_the_same_state(client: Notifier, tmp_path: Path) -> None:
    """Columns and JSON batches are journaled (payments as compact records) and a recovery
    from the journal rebuilds the same engine."""
    programs = [load_program(PROGRAM)]
    engine, journal, _ = open_engine(tmp_path, programs, "off")
    svc = make_service(engine, journal)
    post_columns(svc, client, columns_of([pay(f"K{i}", m=i % 8) for i in range(50)] +
                                         [pay("K3")]))
    seq = journal.journal.next_seq
    post_columns(svc, client, columns_of([pay("K3"), pay("K4")]))  # nothing new: no record
    assert journal.journal.next_seq == seq
    unknown = pay("K60", mchid="1999999999")
    status, answer = post_columns(svc, client, columns_of([unknown, pay("K3")]))
    assert status == 200 and answer["results"] == {"unknown_merchant": 1, "duplicate": 1}
    assert journal.journal.next_seq == seq  # nothing applied: not journaled
    post_batch(svc, client, [{"kind": "payment", "data": pay("K100", m=2)},
                             {"kind": "refund",
                              "data": refund_data("RK1", "K100", STORE, 300, 1000, NOW)},
                             {"kind": "payment", "data": pay("K101", m=3)}])
    journal.close()
    recovered, journal2, _ = open_engine(tmp_path, programs, "off")
    journal2.close()
    assert state(recovered) == state(svc.engine)
    assert recovered.stats()["payments"] == 52


def test_large_columns_body_is_journaled_as_records_and_recovers(client: Notifier,
                                                                  tmp_path: Path) -> None:
    """A body of more payments than a journal record holds is applied as one batch and
    journaled as records of at most JOURNAL_PAYMENTS_PER_RECORD_MAX; recovery rebuilds it."""
    from core.limits import JOURNAL_PAYMENTS_PER_RECORD_MAX as PER_RECORD
    from core.recovery import replay

    programs = [load_program(PROGRAM)]
    engine, journal, _ = open_engine(tmp_path, programs, "off")
    svc = make_service(engine, journal)
    n = 2 * PER_RECORD + 5
    status, answer = post_columns(svc, client, columns_of([pay(f"L{i}", m=i % 8)
                                                           for i in range(n)]))
    assert status == 200 and answer["results"] == {"applied": n}
    journal.close()
    counts: list[int] = []
    replay(tmp_path, 0, lambda r: counts.append(r.count))
    assert counts == [PER_RECORD, PER_RECORD, 5]
    recovered, journal2, _ = open_engine(tmp_path, programs, "off")
    journal2.close()
    assert state(recovered) == state(svc.engine)


def test_columns_limits_are_configured_per_service(client: Notifier) -> None:
    """--columns-max and --columns-body-max: a body over either is refused (400, 413),
    state unchanged; bad values are start-up errors."""
    svc = make_service(columns_payments_max=3, columns_body_bytes_max=2000)
    status, answer = post_columns(svc, client, columns_of([pay(f"M{i}") for i in range(4)]))
    assert status == 400 and "1..3 payments" in answer["message"]
    body, headers = client.columns(columns_of([pay(f"N{i}") for i in range(3)]))
    assert len(body) <= 2000 and call(svc, "POST", PAYMENTS_COLUMNS, body, headers)[0] == 200
    big = b"\x00" * 2001
    assert call(svc, "POST", PAYMENTS_COLUMNS, big,
                client.api_headers("POST", PAYMENTS_COLUMNS, big))[0] == 413
    assert svc.engine.stats()["payments"] == 3
    for bad in ({"columns_payments_max": 0}, {"columns_payments_max": 70_000},
                {"columns_body_bytes_max": 0}):
        with pytest.raises(StartupError, match="--columns"):
            check(Settings(programs=(PROGRAM,), **bad))
