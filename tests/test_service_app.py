"""The ASGI service, driven in-process: every endpoint and every rejection."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from core import Engine, check_invariants, load_program, shard_of
from loadtests import (
    Aead,
    Authenticator,
    HmacSigner,
    HmacVerifier,
    NonceCache,
    Notifier,
    RsaSigner,
    RsaVerifier,
    Service,
    ServiceConfig,
    binding_data,
    enrollment_data,
    payment_data,
    refund_data,
)
from loadtests.inprocess import call_app as call
from loadtests.limits import BATCH_EVENTS_MAX, NOTIFY_BODY_BYTES_MAX

HMAC_KEY = b"test-hmac-key-0123456789abcdef!!"
APIV3_KEY = b"0123456789abcdef0123456789abcdef"
APPID, STORE = "wxload00000000001", "1900000001"
OPENID, UNIONID = "oLoadTest_openid_000000000001", "uLoadTest_unionid_00000000001"
NOW = 1_700_000_000


class Clock:
    """A settable clock for signatures."""

    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def make_service(verifier: Any = "hmac", shards: int = 1, shard: int = 0,
                 plaintext: bool = False, clock: Clock | None = None) -> Service:
    clock = clock or Clock()
    if verifier == "hmac":
        verifier = HmacVerifier(HMAC_KEY)
    config = ServiceConfig(notify_auth=Authenticator(verifier, NonceCache(), clock),
                           api_auth=Authenticator(verifier and HmacVerifier(HMAC_KEY),
                                                  NonceCache(), clock),
                           aead=Aead(APIV3_KEY), allow_plaintext=plaintext,
                           programs=("loadshop",), shard=shard, shards=shards)
    engine = Engine([load_program("scenarios/load_program.toml")])
    return Service(config, engine, shard_of=shard_of, check_invariants=check_invariants)


@pytest.fixture
def svc() -> Service:
    return make_service()


@pytest.fixture
def client() -> Notifier:
    return Notifier(HmacSigner(HMAC_KEY), Aead(APIV3_KEY), clock=lambda: NOW)


def pay(total: int = 1000, txid: str = "T0001", openid: str = OPENID,
        mchid: str = STORE) -> dict:
    return payment_data(txid, APPID, mchid, openid, total, NOW)


def notify(app: Service, c: Notifier, body: bytes, path: str = "/v3/notify/transaction",
           headers: dict[str, str] | None = None) -> tuple[int, Any]:
    return call(app, "POST", path, body, headers or c.notify_headers(body))


def api(app: Service, c: Notifier, method: str, path: str, data: Any = None) -> tuple[int, Any]:
    body = b"" if data is None else orjson.dumps(data)
    return call(app, method, path, body, c.api_headers(method, path, body))


def test_payment_is_acknowledged_and_applied(svc: Service, client: Notifier) -> None:
    """A signed, encrypted payment notification is answered 200 SUCCESS and applied."""
    assert notify(svc, client, client.payment(pay())) == (200, {"code": "SUCCESS"})
    assert svc.engine.stats()["payments"] == 1


def test_duplicate_delivery_is_acknowledged_and_changes_nothing(svc: Service,
                                                                client: Notifier) -> None:
    """A redelivered payment (re-signed, new nonce) gets 200 and books no second time."""
    body = client.payment(pay())
    notify(svc, client, body)
    before = svc.engine.stats()
    assert notify(svc, client, body) == (200, {"code": "SUCCESS"})
    assert svc.engine.stats() == before


def test_refund_after_payment_and_before_it(svc: Service, client: Notifier) -> None:
    """Refunds are acknowledged both after their payment and before it (held)."""
    notify(svc, client, client.payment(pay()))
    r1 = refund_data("R1", "T0001", STORE, 500, 1000, NOW)
    assert notify(svc, client, client.refund(r1), "/v3/notify/refund")[0] == 200
    r2 = refund_data("R2", "T0002", STORE, 100, 1000, NOW)
    assert notify(svc, client, client.refund(r2), "/v3/notify/refund")[0] == 200
    assert notify(svc, client, client.payment(pay(txid="T0002")))[0] == 200
    assert svc.engine.stats()["refunds"] == 2


def test_refund_closed_is_acknowledged(svc: Service, client: Notifier) -> None:
    """A REFUND.CLOSED notification is acknowledged and moves no points."""
    notify(svc, client, client.payment(pay()))
    before = svc.engine.stats()["points_outstanding"]
    r = refund_data("R9", "T0001", STORE, 500, 1000, NOW, status="CLOSED")
    assert notify(svc, client, client.refund(r), "/v3/notify/refund")[0] == 200
    assert svc.engine.stats()["points_outstanding"] == before


def test_engine_rejection_is_422_with_its_code(svc: Service, client: Notifier) -> None:
    """A payment the engine rejects (unknown merchant) gets 422 FAIL naming the code."""
    status, body = notify(svc, client, client.payment(pay(mchid="1999999999")))
    assert status == 422 and body["code"] == "FAIL"
    assert body["message"].startswith("unknown_merchant")


def test_binding_enrollment_and_member_query(svc: Service, client: Notifier) -> None:
    """Bindings and enrollments are applied and the member query shows points and tier."""
    notify(svc, client, client.payment(pay(total=5000)))
    assert api(svc, client, "POST", "/v1/bindings",
               binding_data(APPID, OPENID, UNIONID, NOW + 1))[0] == 200
    assert api(svc, client, "POST", "/v1/enrollments",
               enrollment_data("loadshop", NOW + 2, unionid=UNIONID))[0] == 200
    status, body = api(svc, client, "GET", f"/v1/members/{UNIONID}")
    assert status == 200
    member = body["programs"]["loadshop"]
    assert member["member"] is True and member["tier"] == "member"
    assert member["available"] + member["pending"] > 0


def test_member_query_by_program_and_unknown_member(svc: Service, client: Notifier) -> None:
    """The member query answers 404 for an unknown unionid, also with ?program=."""
    path = "/v1/members/uNobody_000000000000000000000"
    assert api(svc, client, "GET", path)[0] == 404
    assert call(svc, "GET", path, headers=client.api_headers("GET", path),
                query=b"program=loadshop")[0] == 404


def test_batch_applies_many_and_lists_rejections(svc: Service, client: Notifier) -> None:
    """The batch endpoint applies each event and lists the rejected ones by index."""
    events = [{"kind": "payment", "data": pay(txid=f"B{i:04d}")} for i in range(20)]
    events += [{"kind": "payment", "data": pay(txid="B0000")},
               {"kind": "nonsense", "data": {}}, 7]
    status, body = api(svc, client, "POST", "/v1/events:batch", {"events": events})
    assert status == 200
    assert body["results"]["applied"] == 20 and body["results"]["duplicate"] == 1
    assert [r["index"] for r in body["rejected"]] == [21, 22]
    assert svc.engine.stats()["payments"] == 20


def test_batch_rejects_wrong_shapes(svc: Service, client: Notifier) -> None:
    """A batch whose events is not a list, or holds too many, gets 400."""
    assert api(svc, client, "POST", "/v1/events:batch", {"events": {}})[0] == 400
    too_many = {"events": [0] * (BATCH_EVENTS_MAX + 1)}
    assert api(svc, client, "POST", "/v1/events:batch", too_many)[0] == 400


def test_healthz_metrics_and_admin_state(svc: Service, client: Notifier) -> None:
    """/healthz answers ok, /metrics counts requests and events, admin state checks invariants."""
    assert call(svc, "GET", "/healthz") == (200, {"status": "ok", "shard": 0, "shards": 1})
    notify(svc, client, client.payment(pay()))
    call(svc, "POST", "/v3/notify/transaction", b"{}")
    status, text = call(svc, "GET", "/metrics")
    assert status == 200
    assert 'paymember_events_total{shard="0",kind="payment",code="applied"} 1' in text
    assert 'paymember_rejections_total{shard="0",reason="missing_signature"} 1' in text
    assert 'route="notify_transaction",status="200"} 1' in text
    status, state = api(svc, client, "GET", "/v1/admin/state")
    assert status == 200 and state["invariants_ok"] and state["stats"]["payments"] == 1


def test_metrics_count_duplicates_and_the_handlers_own_time(svc: Service,
                                                             client: Notifier) -> None:
    """A redelivery counts as a duplicate beside the applied payment, and the time in the
    handler (the HTTP server's excluded) is summed per route, no more than the latency."""
    body = client.payment(pay())
    assert notify(svc, client, body)[0] == 200
    assert notify(svc, client, body)[0] == 200
    text = call(svc, "GET", "/metrics")[1]
    assert 'paymember_events_total{shard="0",kind="payment",code="applied"} 1' in text
    assert 'paymember_events_total{shard="0",kind="payment",code="duplicate"} 1' in text

    def value(prefix: str) -> float:
        return float(next(ln for ln in text.splitlines() if ln.startswith(prefix)).split()[-1])

    handler = value('paymember_handler_seconds_total{shard="0",route="notify_transaction"}')
    latency = value('paymember_request_seconds_sum{shard="0",route="notify_transaction"}')
    assert 0 < handler <= latency


def test_missing_signature_headers(svc: Service, client: Notifier) -> None:
    """A notification without signature headers is refused 401."""
    status, body = call(svc, "POST", "/v3/notify/transaction", client.payment(pay()))
    assert status == 401 and body["code"] == "FAIL"


def test_bad_signature(svc: Service, client: Notifier) -> None:
    """A body altered after signing, or a signature of the wrong key, is refused 401."""
    body = client.payment(pay())
    headers = client.notify_headers(body)
    assert notify(svc, client, body.replace(b"T0001", b"T0002"), headers=headers)[0] == 401
    other = Notifier(HmacSigner(b"another-key-0123456789abcdef!!!!"), Aead(APIV3_KEY),
                     clock=lambda: NOW)
    assert notify(svc, other, body)[0] == 401
    garbage = {**client.notify_headers(body), "Wechatpay-Signature": "not base64!"}
    assert notify(svc, client, body, headers=garbage)[0] == 401
    assert svc.engine.stats()["payments"] == 0


@pytest.mark.parametrize("skew_s", [-301, 301, -10_000])
def test_stale_timestamp(svc: Service, skew_s: int) -> None:
    """A signature timestamped more than 300 s from the service's clock is refused 401."""
    c = Notifier(HmacSigner(HMAC_KEY), Aead(APIV3_KEY), clock=lambda: NOW + skew_s)
    status, body = notify(svc, c, c.payment(pay()))
    assert status == 401 and "timestamp" in body["message"]


def test_replayed_nonce(svc: Service, client: Notifier) -> None:
    """A request replayed with the same timestamp, nonce and signature is refused 401."""
    body = client.payment(pay())
    headers = client.notify_headers(body)
    assert notify(svc, client, body, headers=headers)[0] == 200
    status, reply = notify(svc, client, body, headers=headers)
    assert status == 401 and "nonce" in reply["message"]


def test_oversized_body(svc: Service, client: Notifier) -> None:
    """A body above the cap is refused 413, by Content-Length or by its streamed size."""
    big = b"x" * (NOTIFY_BODY_BYTES_MAX + 1)
    headers = {**client.notify_headers(big), "Content-Length": str(len(big))}
    assert notify(svc, client, big, headers=headers)[0] == 413
    assert call(svc, "POST", "/v3/notify/transaction", big, client.notify_headers(big),
                chunks=4)[0] == 413


def test_chunked_body_is_read_whole(svc: Service, client: Notifier) -> None:
    """A body that arrives in several ASGI messages is joined before it is checked."""
    body = client.payment(pay())
    assert call(svc, "POST", "/v3/notify/transaction", body, client.notify_headers(body),
                chunks=3)[0] == 200


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", b'"text"'])
def test_malformed_json(svc: Service, client: Notifier, body: bytes) -> None:
    """A body that is not a JSON object is refused 400."""
    status, reply = notify(svc, client, body)
    assert status == 400 and reply["code"] == "FAIL"


@pytest.mark.parametrize("change", [
    {"event_type": 7}, {"event_type": "REFUND.SUCCESS"}, {"id": None}, {"resource": "x"},
    {"resource": {"algorithm": "AEAD_AES_256_GCM", "ciphertext": 5, "nonce": "n"}},
    {"resource": {"algorithm": "ROT13", "ciphertext": "", "nonce": ""}},
    {"resource": {"algorithm": "AEAD_AES_256_GCM", "ciphertext": "AAAA",
                  "nonce": "0123456789ab", "associated_data": "transaction"}},
    {"resource": {"algorithm": "NONE", "plaintext": {}}},
])
def test_wrong_types_and_values_in_the_envelope(svc: Service, client: Notifier,
                                                change: dict) -> None:
    """Wrong types, an unexpected event type, a bad algorithm or ciphertext are refused 400."""
    env = {**orjson.loads(client.payment(pay())), **change}
    status, reply = notify(svc, client, orjson.dumps(env))
    assert status == 400 and reply["code"] == "FAIL"


def test_wrong_types_in_the_transaction(svc: Service, client: Notifier) -> None:
    """A decrypted transaction with a wrong type (total as a string) is refused 4xx."""
    data = pay()
    data["amount"]["total"] = "1000"
    status, reply = notify(svc, client, client.payment(data))
    assert 400 <= status < 500 and reply["code"] == "FAIL"
    env = orjson.loads(client.payment(pay()))
    env["resource"]["ciphertext"] = Aead(APIV3_KEY).encrypt(b"[1, 2]", env["resource"]["nonce"],
                                                            "transaction")
    assert notify(svc, client, orjson.dumps(env))[0] == 400


def test_wrong_apiv3_key(svc: Service) -> None:
    """A resource encrypted with another APIv3 key fails decryption: 400."""
    c = Notifier(HmacSigner(HMAC_KEY), Aead(b"X" * 32), clock=lambda: NOW)
    status, reply = notify(svc, c, c.payment(pay()))
    assert status == 400 and "decrypt" in reply["message"]


def test_plaintext_resource_only_when_configured(client: Notifier) -> None:
    """A plaintext resource is refused by default and applied when configured."""
    c = Notifier(HmacSigner(HMAC_KEY), None, clock=lambda: NOW)
    assert notify(make_service(), c, c.payment(pay()))[0] == 400
    assert notify(make_service(plaintext=True), c, c.payment(pay()))[0] == 200


def test_wrong_shard_is_421(client: Notifier) -> None:
    """With 2 shards, a payment whose openid another shard owns is refused 421."""
    mine = shard_of(OPENID, 2)
    other = make_service(shards=2, shard=1 - mine)
    assert notify(other, client, client.payment(pay()))[0] == 421
    assert notify(make_service(shards=2, shard=mine), client, client.payment(pay()))[0] == 200


def test_api_signature_is_bound_to_method_and_path(svc: Service, client: Notifier) -> None:
    """An internal-API signature made for one path is refused 401 on another."""
    body = orjson.dumps(binding_data(APPID, OPENID, UNIONID, NOW))
    headers = client.api_headers("POST", "/v1/bindings", body)
    assert call(svc, "POST", "/v1/enrollments", body, headers)[0] == 401
    assert call(svc, "POST", "/v1/bindings", body)[0] == 401
    path = f"/v1/members/{UNIONID}"
    assert call(svc, "GET", path)[0] == 401


def test_unknown_route_and_wrong_method(svc: Service) -> None:
    """Unknown paths get 404 and known paths with the wrong method get 405."""
    assert call(svc, "GET", "/nope")[0] == 404
    assert call(svc, "POST", "/nope")[0] == 404
    assert call(svc, "GET", "/v3/notify/transaction")[0] == 405
    assert call(svc, "POST", "/healthz")[0] == 405


def test_rsa_signatures(client: Notifier) -> None:
    """RSA-SHA256 notifications verify with the platform key and its serial only."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    app = make_service(verifier=RsaVerifier(key.public_key(), "SERIAL1"))
    good = Notifier(RsaSigner(key, "SERIAL1"), Aead(APIV3_KEY), clock=lambda: NOW)
    assert notify(app, good, good.payment(pay())) == (200, {"code": "SUCCESS"})
    wrong_serial = Notifier(RsaSigner(key, "SERIAL2"), Aead(APIV3_KEY), clock=lambda: NOW)
    assert notify(app, wrong_serial, wrong_serial.payment(pay(txid="T2")))[0] == 401
    assert notify(app, client, client.payment(pay(txid="T3")))[0] == 401


def test_verification_off_accepts_unsigned() -> None:
    """With verification explicitly off, unsigned requests are accepted."""
    app = make_service(verifier=None)
    c = Notifier(None, Aead(APIV3_KEY), clock=lambda: NOW)
    assert notify(app, c, c.payment(pay()))[0] == 200
    assert api(app, c, "POST", "/v1/bindings", binding_data(APPID, OPENID, UNIONID, NOW))[0] \
        == 200


def test_lifespan_startup_and_shutdown(svc: Service) -> None:
    """The app completes the ASGI lifespan protocol."""
    msgs = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict] = []

    async def receive() -> dict:
        return msgs.pop(0)

    async def send(m: dict) -> None:
        sent.append(m)

    asyncio.run(svc({"type": "lifespan"}, receive, send))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete",
                                         "lifespan.shutdown.complete"]
