"""Layout of a payment's record: PF integers in `Engine.pay`, at the P_* offsets.

Columnar in one `array('q')` so that appending a payment is one `extend`, and a
numpy view `reshape(-1, PF)` gives every column at once.
"""

from __future__ import annotations

# P_BASIS: the earning basis in home fen (payer_total converted); P_REVERSED: points
# due back so far (the floor of the refunded share); P_PENDING: of its points, those
# still pending in the return window.
P_ACCT, P_PROG, P_TIME, P_TOTAL, P_BASIS, P_POINTS, P_REFUNDED, P_REVERSED, P_PENDING = range(9)
PF = 9
FIELDS = ("account", "program", "time_s", "total_fen", "basis_fen", "points", "refunded_fen",
          "reversed_points", "pending_points")
assert len(FIELDS) == PF
