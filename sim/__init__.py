"""paymember simulation: shopper populations in SimPy driving the real engine.

The whole public surface is listed in `__all__` below; docs/scenarios.md documents
the scenario files.
"""

from sim.dists import Dist
from sim.feed import NullEngine, feed
from sim.model import Model
from sim.queues import BALKED, RENEGED, SERVED, QueueBank, Served
from sim.run import default_out, run_scenario
from sim.scenario import (
    CampaignSpec,
    EngineModel,
    Membership,
    Place,
    Platform,
    Scenario,
    Segment,
    load_scenario,
)
from sim.summary import summarize
from sim.theory import erlang_c, little_gap, mg1_wait_s, mmc_wait_s, mmc_wait_tail

__all__ = [
    "BALKED",
    "RENEGED",
    "SERVED",
    "CampaignSpec",
    "Dist",
    "EngineModel",
    "Membership",
    "Model",
    "NullEngine",
    "Place",
    "Platform",
    "QueueBank",
    "Scenario",
    "Segment",
    "Served",
    "default_out",
    "erlang_c",
    "feed",
    "little_gap",
    "load_scenario",
    "mg1_wait_s",
    "mmc_wait_s",
    "mmc_wait_tail",
    "run_scenario",
    "summarize",
]
