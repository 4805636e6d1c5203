"""Scenario files: the population, places, platform, engine capacity and campaigns of a run.

`load_scenario` reads a TOML file strictly (core.config): an unknown key or a bad
value raises ConfigError naming the file, the key path and the reason. The schema
is documented in docs/scenarios.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from core.config import ConfigError, Section, between, load_toml, non_negative, one_of, positive
from core.program import EVENT_KINDS, Program, load_program
from sim.dists import Dist, read_dist

PLACE_KINDS = ("checkout", "gate")
CAMPAIGN_KINDS = ("coupon_push", "friend_invites", "promotion")
MODES = ("fast", "reference")
# Engagement kinds a shopper does by habit (referrals need a second shopper).
HABITS = tuple(k for k in EVENT_KINDS if k not in ("referral", "ad"))
SHOPPERS_MAX = 50_000_000
# Defaults (Dist is frozen, so sharing one instance is safe).
BINDING_DELAY = Dist("exponential", 3600.0)
NO_DELAY = Dist("deterministic", 0.0)
NOTIFY_DELAY = Dist("lognormal", 2.0, 1.0)
DUPLICATE_DELAY = Dist("exponential", 60.0)
REFUND_DELAY = Dist("lognormal", 3600.0, 2.0)
STATIONS_MAX = 1_000_000
LANES_MAX = 64
BALK_QUEUE_LEN_MAX = 256


@dataclass(frozen=True, slots=True)
class Membership:
    """How a segment behaves toward membership, coupons and tiers (probabilities 0..1)."""

    join_prob: float = 0.1  # accepts a pay-to-join offer
    bonus_lift: float = 0.0  # relative lift of join_prob when the program has a welcome bonus
    shadow_lift: float = 0.0  # relative lift when shadow points are waiting to be converted
    friend_accept_prob: float = 0.3
    coupon_redeem_prob: float = 0.3  # redeems a held coupon at a payment
    tier_sensitivity: float = 0.0  # relative visit-rate rise when near the next tier
    login_prob: float = 0.2  # mini-program login (binding) per active day
    binding_delay: Dist = BINDING_DELAY


@dataclass(frozen=True, slots=True)
class Segment:
    """A shopper segment: its share, daily profile, visit rates, baskets and habits."""

    name: str
    share: float
    profile: tuple[float, ...]  # 24 hourly weights, normalised to sum 1
    visits_per_day: dict[str, float]  # place name -> visits per shopper per day
    basket: dict[str, Dist]  # place name -> amount in minor units of `currency`
    currency: str = "CNY"
    home_prob: float = 0.7  # visits go to the shopper's home station
    engagement: dict[str, float] = field(default_factory=dict)  # kind -> per day
    membership: Membership = Membership()


@dataclass(frozen=True, slots=True)
class Place:
    """A place type: `count` stations with `lanes` servers each (checkout lanes or gates)."""

    name: str
    kind: str
    program: str
    channel: str
    mchid: str
    count: int
    lanes: int
    service: Dist  # seconds per customer
    balk_queue_len: int = 0  # 0 = never balk; else balk when this many wait
    patience_s: float = 0.0  # mean (exponential) patience; 0 = never renege
    settle: Dist = NO_DELAY  # service end -> payment success


@dataclass(frozen=True, slots=True)
class Platform:
    """The payment platform: notification delay, retries, duplicates and refunds."""

    notify_delay: Dist = NOTIFY_DELAY
    ack_timeout_s: float = 5.0
    lost_prob: float = 0.0  # a first delivery is lost in the network
    duplicate_prob: float = 0.001  # an acknowledged notification is sent again
    duplicate_delay: Dist = DUPLICATE_DELAY
    refund_prob: float = 0.01
    refund_partial_prob: float = 0.5
    refund_second_prob: float = 0.1  # a partial refund is followed by another
    refund_delay: Dist = REFUND_DELAY
    refund_first_prob: float = 0.0  # a refund is delivered before its payment's notification


@dataclass(frozen=True, slots=True)
class EngineModel:
    """The engine's capacity: `workers` FIFO shards, each taking `service_us` per input."""

    workers: int = 1
    service_us: float = 100.0
    advance_every_s: int = 3600
    stats_every_s: int = 900


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    """A merchant action over time: coupon push, Friend Membership invitations, promotion."""

    kind: str
    at_hour: float
    program: str = ""
    stock_id: str = ""
    share: float = 1.0  # coupon_push: share of members reached
    place: str = ""  # promotion: which place type
    until_hour: float = 24.0
    visit_lift: float = 0.0  # promotion: relative rise of visit rates


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole run: when, who, where, the platform, the engine, the programs, the campaigns."""

    name: str
    file: str
    description: str
    start_s: int  # epoch seconds of local midnight of `date`
    utc_offset_s: int
    start_hour: float  # activity starts this many hours after midnight
    hours: float
    drain_hours: float
    seed: int
    mode: str
    block_s: int
    tick_s: float
    shoppers: int
    segments: tuple[Segment, ...]
    places: tuple[Place, ...]
    programs: tuple[Program, ...]
    platform: Platform
    engine: EngineModel
    campaigns: tuple[CampaignSpec, ...] = ()

    def program(self, pid: str) -> Program:
        """Return the program with id `pid`; raises KeyError."""
        for p in self.programs:
            if p.id == pid:
                return p
        raise KeyError(pid)

    def place_index(self, name: str) -> int:
        """Return the index of place type `name`; raises KeyError."""
        for i, p in enumerate(self.places):
            if p.name == name:
                return i
        raise KeyError(name)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file; raises ConfigError(file, key path, reason)."""
    root = load_toml(path)
    base = Path(path).parent
    s = root.table("scenario", required=True)
    name = s.get("name", str, check=lambda v: None if v else "must not be empty")
    desc = s.get("description", str, "")
    date = s.get("date", dt.date, dt.date(2026, 3, 10),
                 check=lambda v: "expected a date without time" if isinstance(v, dt.datetime)
                 else None)
    offset_txt = s.get("utc_offset", str, "+08:00")
    offset = _offset(s, offset_txt)
    start_hour = s.get("start_hour", float, 0.0, check=between(0, 24 * 7))
    hours = s.get("hours", float, 24.0, check=between(0.25, 24 * 7))
    drain = s.get("drain_hours", float, 1.0, check=between(0, 25))
    seed = s.get("seed", int, 1, check=non_negative)
    mode = s.get("mode", str, "fast", check=one_of(*MODES))
    block_min = s.get("block_minutes", int, 15,
                      check=lambda v: None if v >= 1 and 60 % v == 0 else "must divide 60")
    # A retry comes >= 15 s after its delivery: with ticks of at most 15 s it always
    # lands in a later tick, which keeps the engine's queue exact.
    tick = s.get("tick_s", float, 10.0, check=between(0.1, 15))
    if (start_hour * 3600) % (block_min * 60):
        raise s.error("start_hour", "must be a whole number of blocks after midnight")
    s.done()
    start = int(dt.datetime(date.year, date.month, date.day,
                            tzinfo=dt.timezone(dt.timedelta(seconds=offset))).timestamp())

    programs = []
    for p in root.tables("programs"):
        file = p.get("file", str)
        try:
            programs.append(load_program(base / file))
        except ConfigError as e:
            if e.reason == "file not found" and not e.path:
                raise p.error("file", f"program file {file!r} not found") from None
            raise
        p.done()
    if not programs:
        raise root.error("programs", "at least one [[programs]] file is required")
    by_id = {p.id: p for p in programs}
    if len(by_id) != len(programs):
        raise root.error("programs", "two program files have the same program id")

    places = tuple(_read_place(t, by_id) for t in root.tables("places"))
    if not places:
        raise root.error("places", "at least one [[places]] table is required")
    names = [p.name for p in places]
    if len(set(names)) != len(names):
        raise root.error("places", "place names must be unique")

    pop = root.table("population", required=True)
    shoppers = pop.get("shoppers", int, check=between(1, SHOPPERS_MAX))
    pop.done()
    segments = tuple(_read_segment(t, names, places, by_id) for t in root.tables("segments"))
    if not segments:
        raise root.error("segments", "at least one [[segments]] table is required")
    total = sum(g.share for g in segments)
    if abs(total - 1.0) > 1e-6:
        raise root.error("segments", f"shares must sum to 1, got {total:g}")

    platform = _read_platform(root.table("platform"))
    engine = _read_engine(root.table("engine"))
    campaigns = tuple(_read_campaign(t, names, by_id) for t in root.tables("campaigns"))
    root.done()
    return Scenario(name, str(path), desc, start, offset, start_hour, hours, drain, seed, mode,
                    block_min * 60, tick, shoppers, segments, places, tuple(programs), platform,
                    engine, campaigns)


def _offset(s: Section, text: str) -> int:
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":" or not (
            text[1:3] + text[4:]).isdigit():
        raise s.error("utc_offset", "expected +HH:MM")
    secs = int(text[1:3]) * 3600 + int(text[4:]) * 60
    return secs if text[0] == "+" else -secs


def _prob(v: float) -> str | None:
    return None if 0 <= v <= 1 else "must be a probability between 0 and 1"


def _read_place(t: Section, programs: dict[str, Program]) -> Place:
    name = t.get("name", str, check=lambda v: None if v.isidentifier() else "must be an identifier")
    kind = t.get("kind", str, check=one_of(*PLACE_KINDS))
    pid = t.get("program", str, check=lambda v: None if v in programs
                else f"unknown program; loaded: {', '.join(programs)}")
    prog = programs[pid]
    channel = t.get("channel", str, check=lambda v: None if v in prog.merchants.values()
                    else f"program {pid!r} has no merchant on channel {v!r}")
    mchid = t.get("mchid", str, next(m for m, c in prog.merchants.items() if c == channel),
                  check=lambda v: None if prog.merchants.get(v) == channel
                  else f"not a {channel!r} merchant of program {pid!r}")
    count = t.get("count", int, check=between(1, STATIONS_MAX))
    lanes = t.get("lanes", int, 1, check=between(1, LANES_MAX))
    service = read_dist(t, "service_s")
    balk = t.get("balk_queue_len", int, 0, check=between(0, BALK_QUEUE_LEN_MAX))
    patience = t.get("patience_s", float, 0.0, check=non_negative)
    settle = read_dist(t, "settle_s", Dist("deterministic", 0.0))
    t.done()
    return Place(name, kind, pid, channel, mchid, count, lanes, service, balk, patience, settle)


def _read_segment(t: Section, names: list[str], places: tuple[Place, ...],
                  programs: dict[str, Program]) -> Segment:
    name = t.get("name", str)
    share = t.get("share", float, check=_prob)
    prof = t.get("profile", list, [1.0] * 24)
    if len(prof) != 24 or not all(isinstance(x, int | float) and x >= 0 for x in prof) or not sum(
            prof):
        raise t.error("profile", "expected 24 non-negative hourly weights, not all zero")
    tot = float(sum(prof))
    currency = t.get("currency", str, "CNY")
    visits: dict[str, float] = {}
    v = t.table("visits_per_day", required=True)
    for key in v.names():
        if key not in names:
            raise v.error(key, f"unknown place; places: {', '.join(names)}")
        visits[key] = v.get(key, float, check=between(0, 100))
    v.done()
    basket: dict[str, Dist] = {}
    b = t.table("basket_fen")
    for key in b.names():
        if key not in names:
            raise b.error(key, f"unknown place; places: {', '.join(names)}")
        basket[key] = read_dist(b, key)
    b.done()
    for key in visits:
        if key not in basket:
            raise t.error(f"basket_fen.{key}", "required: a basket for every visited place")
        prog = programs[places[names.index(key)].program]
        if currency != prog.home_currency and currency not in prog.fx:
            raise t.error("currency", f"program {prog.id!r} has no fx rate for {currency}")
    home = t.get("home_prob", float, 0.7, check=_prob)
    eng: dict[str, float] = {}
    e = t.table("engagement")
    for key in e.names():
        if key not in HABITS:
            raise e.error(key, f"unknown habit; one of {', '.join(HABITS)}")
        eng[key] = e.get(key, float, check=between(0, 100))
    e.done()
    m = t.table("membership")
    mem = Membership(
        m.get("join_prob", float, 0.1, check=_prob), m.get("bonus_lift", float, 0.0,
                                                           check=between(0, 10)),
        m.get("shadow_lift", float, 0.0, check=between(0, 10)),
        m.get("friend_accept_prob", float, 0.3, check=_prob),
        m.get("coupon_redeem_prob", float, 0.3, check=_prob),
        m.get("tier_sensitivity", float, 0.0, check=between(0, 10)),
        m.get("login_prob", float, 0.2, check=_prob),
        read_dist(m, "binding_delay_s", Dist("exponential", 3600.0)))
    m.done()
    t.done()
    return Segment(name, share, tuple(x / tot for x in prof), visits, basket, currency, home,
                   eng, mem)


def _read_platform(t: Section) -> Platform:
    d = Platform()
    p = Platform(
        read_dist(t, "notify_delay_s", d.notify_delay),
        t.get("ack_timeout_s", float, d.ack_timeout_s, check=positive),
        t.get("lost_prob", float, d.lost_prob, check=_prob),
        t.get("duplicate_prob", float, d.duplicate_prob, check=_prob),
        read_dist(t, "duplicate_delay_s", d.duplicate_delay),
        t.get("refund_prob", float, d.refund_prob, check=_prob),
        t.get("refund_partial_prob", float, d.refund_partial_prob, check=_prob),
        t.get("refund_second_prob", float, d.refund_second_prob, check=_prob),
        read_dist(t, "refund_delay_s", d.refund_delay),
        t.get("refund_first_prob", float, d.refund_first_prob, check=_prob))
    t.done()
    return p


def _read_engine(t: Section) -> EngineModel:
    e = EngineModel(t.get("workers", int, 1, check=between(1, 1024)),
                    t.get("service_us", float, 100.0, check=positive),
                    t.get("advance_every_s", int, 3600, check=between(60, 86400)),
                    t.get("stats_every_s", int, 900, check=between(60, 86400)))
    t.done()
    return e


def _read_campaign(t: Section, names: list[str], programs: dict[str, Program]) -> CampaignSpec:
    kind = t.get("kind", str, check=one_of(*CAMPAIGN_KINDS))
    at = t.get("at_hour", float, check=between(0, 24 * 7))
    if kind == "promotion":
        place = t.get("place", str, check=lambda v: None if v in names
                      else f"unknown place; places: {', '.join(names)}")
        until = t.get("until_hour", float, check=between(0, 24 * 7))
        if until <= at:
            raise t.error("until_hour", "must be after at_hour")
        c = CampaignSpec(kind, at, place=place, until_hour=until,
                         visit_lift=t.get("visit_lift", float, check=between(0, 100)))
    else:
        pid = t.get("program", str, check=lambda v: None if v in programs
                    else f"unknown program; loaded: {', '.join(programs)}")
        if kind == "coupon_push":
            stock = t.get("stock_id", str, check=lambda v: None if v in programs[pid].coupons
                          else f"program {pid!r} has no coupon stock {v!r}")
            c = CampaignSpec(kind, at, pid, stock, t.get("share", float, 1.0, check=_prob))
        else:
            if programs[pid].friend_min_visits == 0:
                raise t.error("program", f"program {pid!r} has Friend Membership off"
                                         " (membership.friend_min_visits = 0)")
            c = CampaignSpec(kind, at, pid)
    t.done()
    return c
