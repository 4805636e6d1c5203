"""paymember loadtests: the HTTP service, its client, and the Locust load tests.

The whole public surface is listed in `__all__` below; locustfiles live in
this package but are loaded by Locust only, never imported here.
"""

from loadtests.aead import Aead, DecryptError
from loadtests.app import Service, ServiceConfig
from loadtests.auth import Authenticator
from loadtests.client import Notifier
from loadtests.errors import Rejection
from loadtests.inprocess import call_app, call_app_async
from loadtests.keys import KeyConfigError, Keys, load_keys
from loadtests.metrics import Metrics
from loadtests.nonces import NonceCache
from loadtests.payloads import (
    binding_data,
    enrollment_data,
    event_data,
    payment_data,
    refund_data,
    rfc3339,
)
from loadtests.settings import Settings, StartupError
from loadtests.signing import HmacSigner, HmacVerifier, RsaSigner, RsaVerifier

__all__ = [
    "Aead",
    "Authenticator",
    "DecryptError",
    "HmacSigner",
    "HmacVerifier",
    "KeyConfigError",
    "Keys",
    "Metrics",
    "NonceCache",
    "Notifier",
    "Rejection",
    "RsaSigner",
    "RsaVerifier",
    "Service",
    "ServiceConfig",
    "Settings",
    "StartupError",
    "binding_data",
    "call_app",
    "call_app_async",
    "enrollment_data",
    "event_data",
    "load_keys",
    "payment_data",
    "refund_data",
    "rfc3339",
]
