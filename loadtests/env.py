"""Environment variables through which the runner configures the Locust processes."""

from __future__ import annotations

SCENARIO = "PAYMEMBER_LOAD_SCENARIO"  # path of the scenario TOML
DURATION = "PAYMEMBER_LOAD_DURATION_S"  # optional override of the scenario's duration
URLS = "PAYMEMBER_LOAD_URLS"  # JSON list of the shards' base URLs, shard order
OUT = "PAYMEMBER_LOAD_OUT"  # output directory
PROCESSES = "PAYMEMBER_LOAD_PROCESSES"  # Locust worker processes (for member slices)
SIGNED = "PAYMEMBER_LOAD_SIGNED"  # "0": the service runs with verification off
MEMBERS = "PAYMEMBER_LOAD_MEMBERS"  # optional override of the scenario's member population
