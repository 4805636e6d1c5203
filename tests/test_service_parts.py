"""The service's parts: replay cache, keys, AEAD, metrics text, settings checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core import Code
from loadtests import (
    Aead,
    DecryptError,
    HmacSigner,
    HmacVerifier,
    KeyConfigError,
    Metrics,
    NonceCache,
    RsaSigner,
    RsaVerifier,
    load_keys,
)
from loadtests.metrics import LATENCY_BUCKETS_S, SAMPLES_PENDING_MAX
from loadtests.settings import Settings, StartupError, check, is_loopback

KEY32 = "0123456789abcdef0123456789abcdef"
GOOD_ENV = {"PAYMEMBER_HMAC_KEY": "k" * 32, "PAYMEMBER_APIV3_KEY": KEY32}
PROGRAM = "scenarios/load_program.toml"


def test_nonce_cache_accepts_once_within_the_window() -> None:
    """A nonce is accepted once; again it is a replay; outside the window it is stale."""
    c = NonceCache(window_s=300, capacity=10)
    assert c.check("a", 1000, 1000) is None
    assert c.check("a", 1000, 1001) == "replayed nonce"
    assert c.check("b", 699, 1000) == "stale timestamp"
    assert c.check("c", 1301, 1000) == "stale timestamp"


def test_nonce_cache_forgets_expired_entries() -> None:
    """Nonces older than the window are dropped, so the cache does not grow without bound."""
    c = NonceCache(window_s=10, capacity=100)
    for i in range(50):
        c.check(f"n{i}", 1000 + i, 1000 + i)
    assert len(c) <= 11


def test_nonce_cache_when_full_shrinks_the_window_instead_of_forgetting() -> None:
    """A full cache evicts the oldest and refuses anything signed at or before it."""
    c = NonceCache(window_s=300, capacity=3)
    for i, ts in enumerate((1000, 1001, 1002, 1003)):
        assert c.check(f"n{i}", ts, 1003) is None
    assert len(c) == 3 and c.floor_s == 1000
    assert c.check("n0", 1000, 1003) == "stale timestamp"  # the forgotten one is not replayable
    assert c.check("x", 1000, 1003) == "stale timestamp"
    assert c.check("y", 1004, 1004) is None


def test_keys_from_environment_and_files(tmp_path: Path) -> None:
    """Keys come from PAYMEMBER_* variables or from the files that *_FILE names."""
    f = tmp_path / "hmac"
    f.write_text("h" * 20 + "\n")
    k = load_keys({"PAYMEMBER_HMAC_KEY_FILE": str(f), "PAYMEMBER_APIV3_KEY": KEY32})
    assert k.hmac_key == b"h" * 20 and k.apiv3_key == KEY32.encode()
    assert load_keys({}).hmac_key is None


@pytest.mark.parametrize("env, words", [
    ({"PAYMEMBER_HMAC_KEY": "short"}, "at least"),
    ({"PAYMEMBER_APIV3_KEY": "short"}, "exactly 32"),
    ({"PAYMEMBER_HMAC_KEY": "k" * 32, "PAYMEMBER_HMAC_KEY_FILE": "/x"}, "not both"),
    ({"PAYMEMBER_HMAC_KEY_FILE": "/nonexistent/key"}, "cannot read"),
    ({"PAYMEMBER_PLATFORM_PUBLIC_KEY": "not pem"}, "PEM"),
])
def test_bad_keys_are_named_errors(env: dict, words: str) -> None:
    """A short, doubly given, unreadable or malformed key is a KeyConfigError naming it."""
    with pytest.raises(KeyConfigError, match=words):
        load_keys(env)


def test_rsa_keys_load_from_pem(tmp_path: Path) -> None:
    """Platform RSA keys load from PEM files."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = tmp_path / "pub.pem"
    pub.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    k = load_keys({"PAYMEMBER_PLATFORM_PUBLIC_KEY_FILE": str(pub)})
    assert k.public_key is not None and k.public_key.key_size == 2048


def test_aead_round_trip_and_tampering() -> None:
    """AEAD_AES_256_GCM decrypts what it encrypted and refuses altered data or a bad nonce."""
    a = Aead(KEY32.encode())
    ct = a.encrypt(b'{"x":1}', "abcdefghijkl", "transaction")
    assert a.decrypt(ct, "abcdefghijkl", "transaction") == b'{"x":1}'
    for args in ((ct, "abcdefghijkl", "refund"), (ct, "short", "transaction"),
                 ("!!" + ct, "abcdefghijkl", "transaction")):
        with pytest.raises(DecryptError):
            a.decrypt(*args)
    with pytest.raises(ValueError):
        Aead(b"too short")


def test_metrics_render_prometheus_text() -> None:
    """Metrics render as Prometheus text with cumulative histogram buckets."""
    m = Metrics(shard=1)
    m.observe("x", 200, 0.0002)
    m.observe("x", 422, 0.003)
    m.event("payment", "applied")
    m.reject("bad_signature")
    text = m.render()
    assert 'paymember_requests_total{shard="1",route="x",status="422"} 1' in text
    assert 'paymember_request_seconds_bucket{shard="1",route="x",le="+Inf"} 2' in text
    assert 'paymember_request_seconds_bucket{shard="1",route="x",le="0.00025"} 1' in text
    assert "# TYPE paymember_request_seconds histogram" in text


def test_metrics_merge_events_counted_by_kind_and_by_code() -> None:
    """Inputs counted by kind alone (the fast path) and by (kind, code) render as one line."""
    m = Metrics()
    m.applied["payment"] += 2
    m.event("payment", Code.APPLIED)
    m.duplicates["refund"] += 1
    m.event("refund", Code.UNKNOWN_MERCHANT)
    assert m.events_total() == {("payment", "applied"): 3, ("refund", "duplicate"): 1,
                                ("refund", str(Code.UNKNOWN_MERCHANT)): 1}
    text = m.render()
    assert text.count('kind="payment",code="applied"} 3') == 1


def test_metrics_histogram_is_bucketed_in_bulk_like_bisect() -> None:
    """Latencies buffered and bucketed in bulk land where `le` puts them, bounds included."""
    m = Metrics()
    samples = [*LATENCY_BUCKETS_S, 0.0, 0.00005, 0.0003, 7.0] * (SAMPLES_PENDING_MAX // 10)
    for x in samples:
        m.observe("r", 200, x)
    text = m.render()
    for le in LATENCY_BUCKETS_S:
        below = sum(1 for x in samples if x <= le)
        assert f'paymember_request_seconds_bucket{{shard="0",route="r",le="{le}"}} {below}' \
            in text
    assert f'le="+Inf"}} {len(samples)}' in text
    assert f'paymember_requests_total{{shard="0",route="r",status="200"}} {len(samples)}' in text
    total = next(line for line in text.splitlines() if line.startswith(
        'paymember_request_seconds_sum{shard="0",route="r"}'))
    assert float(total.split()[-1]) == pytest.approx(sum(samples), abs=1e-5)


@pytest.mark.parametrize("key_bytes", [16, 32, 64, 65, 200])
def test_hmac_verifier_agrees_with_hmac_for_any_key_length(key_bytes: int) -> None:
    """The pre-keyed verifier accepts exactly the signatures HMAC-SHA256 makes, for any key."""
    key = bytes(range(256))[:key_bytes]
    v = HmacVerifier(key)
    for message in (b"", b"1700000000\nnonce\n{}\n", b"x" * 5000):
        sig = HmacSigner(key).sign(message)
        assert v.verify(message, sig, "") and v.verify(message, sig.encode(), b"")
        assert not v.verify(message + b"!", sig, "")
        assert not v.verify(message, HmacSigner(key + b"?").sign(message), "")
        for cut in {0, len(message) // 3, len(message)}:  # hashed in parts: the same answer
            parts = (message[:cut], message[cut:], b"")
            assert v.verify_parts(parts, sig, "")
            assert not v.verify_parts((*parts, b"!"), sig, "")


def test_rsa_verifier_checks_parts_as_the_joined_message() -> None:
    """The RSA verifier's verify_parts is its verify of the joined parts."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    v = RsaVerifier(private.public_key(), serial="S1")
    message = b"1700000000\nnonce\n{}\n"
    sig = RsaSigner(private, "S1").sign(message)
    assert v.verify_parts((message[:5], message[5:]), sig, "S1")
    assert not v.verify_parts((message[:5], message[6:]), sig, "S1")
    assert not v.verify_parts((message,), sig, "S2")


def test_loopback_detection() -> None:
    """Loopback hosts are recognised; others are not."""
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")


@pytest.mark.parametrize("settings, words", [
    (Settings(host="0.0.0.0", verify="off", programs=(PROGRAM,), env=GOOD_ENV), "loopback"),
    (Settings(programs=(), env=GOOD_ENV), "--program"),
    (Settings(programs=("nope.toml",), env=GOOD_ENV), "not found"),
    (Settings(programs=(PROGRAM,), env={"PAYMEMBER_APIV3_KEY": KEY32}), "PAYMEMBER_HMAC_KEY"),
    (Settings(programs=(PROGRAM,), env={"PAYMEMBER_HMAC_KEY": "k" * 32}), "APIV3"),
    (Settings(programs=(PROGRAM,), verify="rsa", env=GOOD_ENV), "PUBLIC_KEY"),
    (Settings(programs=(PROGRAM,), shards=0, env=GOOD_ENV), "--shards"),
])
def test_settings_that_cannot_start(settings: Settings, words: str) -> None:
    """Settings that cannot work are refused before start-up with a message saying why."""
    with pytest.raises(StartupError, match=words):
        check(settings)


def test_bad_journal_directory(tmp_path: Path) -> None:
    """A journal path that is a file is refused before start-up."""
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(StartupError, match="journal"):
        check(Settings(programs=(PROGRAM,), journal=str(f / "sub"), env=GOOD_ENV))
