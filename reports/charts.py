"""The run report's charts, drawn with matplotlib's Agg backend (no display needed).

Each function draws one figure from a finished model and its summary, and returns it;
`CHARTS` lists them with their file names and titles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from sim.model import Model


def _hours(m: Model, n: int, step_s: int) -> np.ndarray:
    return np.arange(n) * step_s / 3600.0


def _window(m: Model, ax: Any) -> None:
    ax.set_xlim(m.begin_s / 3600, m.horizon_s / 3600)
    ax.set_xlabel("hour of the day (local time)")
    ax.grid(alpha=0.3)


def load_over_day(m: Model, s: dict[str, Any]) -> Figure:
    """Payments per minute, and the engine's inputs per minute against its capacity."""
    rec = m.rec
    per_s = rec.payments_per_s[:-1]
    minutes = len(per_s) // 60
    per_min = per_s[: minutes * 60].reshape(minutes, 60).sum(axis=1)
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    a1.plot(_hours(m, minutes, 60), per_min, color="tab:blue", lw=1, label="payments")
    a1.set_ylabel("payments per minute")
    a1.set_title(f"Payments over the day (peak {s['peak_payments_per_s']}/s)")
    a1.legend(loc="upper left")
    _window(m, a1)
    d = rec.deliveries_per_min
    a2.plot(_hours(m, len(d), 60), d, color="tab:green", lw=1, label="engine inputs")
    a2.axhline(m.capacity_per_s * 60, color="tab:red", ls="--", lw=1, label="engine capacity")
    a2.set_ylabel("inputs per minute")
    a2.set_yscale("symlog", linthresh=10)
    a2.set_ylim(bottom=0)
    b = a2.twinx()
    b.plot(_hours(m, len(rec.backlog_per_min), 60), rec.backlog_per_min, color="tab:orange",
           lw=1, label="backlog (max per minute)")
    b.set_ylabel("backlog (inputs)")
    lines = a2.get_legend_handles_labels()
    lines2 = b.get_legend_handles_labels()
    a2.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper left")
    a2.set_title("Engine load")
    _window(m, a2)
    fig.tight_layout()
    return fig


def queue_waits(m: Model, s: dict[str, Any]) -> Figure:
    """Distribution of queue waits per place type (served customers)."""
    fig, ax = plt.subplots(figsize=(10, 5))
    for p in m.rec.places:
        w = np.sort(p.wait_all().astype(np.float64))
        if not len(w):
            continue
        frac = 1.0 - np.arange(1, len(w) + 1) / len(w)
        q = s["queue_wait_s"][p.name]
        ax.step(np.maximum(w, 0.01), frac, where="post",
                label=f"{p.name}: mean {q['mean']:.1f} s, p95 {q['p95']:.1f} s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("wait in queue (s, log scale; zero waits shown at 0.01 s)")
    ax.set_ylabel("fraction of customers waiting longer")
    ax.set_title("Queue waits by place type")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    return fig


def notify_latency(m: Model, s: dict[str, Any]) -> Figure:
    """Payment-to-acknowledgement latency, and deliveries by attempt (retries)."""
    from sim.tables import PAY

    tab = m.tab
    pay = np.flatnonzero(tab.kind == PAY)
    lat = tab.first_ack_s[pay] - tab.t_s[pay]
    lat = lat[~np.isnan(lat)]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    if len(lat):
        bins = np.logspace(np.log10(max(lat.min(), 1e-3)), np.log10(max(lat.max(), 1.0)) + 0.01,
                           60)
        a1.hist(lat, bins=bins, color="tab:purple", label="payments")
        a1.set_xscale("log")
    a1.set_yscale("log")
    n = s["notify_latency_s"]
    a1.set_title(f"Notification latency (p50 {n['p50']:.2f} s, p99 {n['p99']:.2f} s)")
    a1.set_xlabel("payment success to acknowledgement (s, log scale)")
    a1.set_ylabel("payments")
    a1.legend()
    att = s["platform"]["deliveries_by_attempt"]
    a2.bar(np.arange(len(att)), att, color="tab:gray", label="deliveries")
    a2.set_yscale("symlog", linthresh=1)
    a2.set_xlabel("attempt (0 = first delivery, 1-15 = retries)")
    a2.set_ylabel("notifications delivered")
    a2.set_title("Deliveries by attempt")
    a2.legend()
    fig.tight_layout()
    return fig


def funnel(m: Model, s: dict[str, Any]) -> Figure:
    """The enrollment funnel: payers, offers, invitations, joins, members."""
    f = s["funnel"]
    steps = [("shoppers", s["shoppers"]), ("payers", f["payers"]),
             ("offered a card", f["offered"]), ("friend-invited", f["friend_invited"]),
             ("accepted", f.get("joins_sent", 0)), ("enrolled", f.get("enrolled", 0))]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.barh([k for k, _ in steps][::-1], [v for _, v in steps][::-1], color="tab:cyan",
            label="shoppers (distinct per program for offers)")
    for i, (_, v) in enumerate(steps[::-1]):
        ax.text(v, i, f" {v:,}", va="center")
    ax.set_xlabel("shoppers")
    ax.set_title(f"Enrollment funnel (enrollment rate {s['enrollment_rate']:.1%} of payers)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def points(m: Model, s: dict[str, Any]) -> Figure:
    """Points issued and outstanding (the liability) over time, from engine samples."""
    tl = m.rec.timeline
    fig, ax = plt.subplots(figsize=(10, 4.5))
    t = np.array([x["t_s"] for x in tl]) / 3600
    for key, label in (("points_issued", "issued (cumulative)"),
                       ("points_outstanding", "outstanding, members (liability)"),
                       ("shadow_points", "shadow (not yet members)")):
        if tl and key in tl[0]:
            ax.plot(t, [x[key] for x in tl], label=label)
    ax.set_ylabel("points")
    ax.set_title("Points issued and outstanding")
    _window(m, ax)
    ax.legend()
    fig.tight_layout()
    return fig


def tiers(m: Model, s: dict[str, Any]) -> Figure:
    """Members per tier, per program."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    x = 0
    ticks, labels = [], []
    for prog, counts in s["tiers"].items():
        xs = np.arange(len(counts)) + x
        ax.bar(xs, list(counts.values()), label=prog)
        ticks += list(xs)
        labels += list(counts)
        x += len(counts) + 1
    ax.set_xticks(ticks, labels, rotation=30, ha="right")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylabel("members")
    ax.set_title("Tier distribution at the end of the run")
    if s["tiers"]:
        ax.legend(title="program")
    fig.tight_layout()
    return fig


CHARTS: tuple[tuple[str, str, Callable[[Model, dict[str, Any]], Figure]], ...] = (
    ("load", "Payments and engine load over the day", load_over_day),
    ("queue_waits", "Queue waits by place type", queue_waits),
    ("notify_latency", "Notification latency and retries", notify_latency),
    ("funnel", "Enrollment funnel", funnel),
    ("points", "Points issued and outstanding", points),
    ("tiers", "Tier distribution", tiers),
)
