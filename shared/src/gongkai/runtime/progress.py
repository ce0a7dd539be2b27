"""How a projection is getting on: its catch-up rate, when it will be there, whether it is stuck.

Readiness is not "zero lag at this instant" (under steady writes a projection is always a few
events behind, and a probe would see it behind half the time): a service is ready once each
projection has caught up after start, for as long as none of them is *stalled* — behind with no
progress for a while. Time is passed in (``now``, monotonic seconds) so the rules are tested
without waiting.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

#: Seconds of recent positions the rate is measured over.
WINDOW = 30.0


@dataclass(frozen=True)
class Snapshot:
    """One projection as ``/status`` shows it."""

    name: str
    position: int
    stream_last: int
    lag: int
    caught_up_once: bool
    #: Events applied per second over the last ``WINDOW`` seconds (None: not measured yet).
    rate: float | None
    #: Seconds until the lag is applied at that rate (None: no lag, or no rate to go by).
    eta: float | None
    #: Seconds behind with no progress (0 when not behind).
    stalled: float

    def as_dict(self) -> dict[str, object]:
        return {
            "projection": self.name,
            "position": self.position,
            "stream_last_sequence": self.stream_last,
            "lag": self.lag,
            "caught_up_once": self.caught_up_once,
            "rate_per_second": None if self.rate is None else round(self.rate, 1),
            "eta_seconds": None if self.eta is None else round(self.eta, 1),
            "stalled_seconds": round(self.stalled, 1),
        }


class Progress:
    """A projection's recent positions; fed by the subscription, read by probes."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()
        self.moved_at = 0.0
        #: When a probe first saw the projection behind (None: not behind when last looked).
        self.behind_since: float | None = None

    def advanced(self, position: int, now: float | None = None) -> None:
        t = time.monotonic() if now is None else now
        self.moved_at = t
        self._samples.append((t, position))
        while len(self._samples) > 2 and self._samples[0][0] < t - WINDOW:
            self._samples.popleft()

    def rate(self, now: float | None = None) -> float | None:
        t = time.monotonic() if now is None else now
        if len(self._samples) < 2:
            return None
        (t0, p0), (_, p1) = self._samples[0], self._samples[-1]
        # Measured to now, not to the last sample: a projection that stopped moving slows down.
        span = max(t - t0, 1e-3)
        return (p1 - p0) / span

    def observe(self, lag: int, now: float | None = None) -> float:
        """Seconds the projection has been behind without progress, as of this look."""
        t = time.monotonic() if now is None else now
        if lag <= 0:
            self.behind_since = None
            return 0.0
        if self.behind_since is None:
            # Behind from now on as far as anyone knows: a burst that arrived after an idle
            # hour is not an hour of being stuck.
            self.behind_since = t
        return max(0.0, t - max(self.behind_since, self.moved_at))

    def snapshot(
        self, name: str, position: int, stream_last: int, lag: int, caught_up_once: bool,
        now: float | None = None,
    ) -> Snapshot:
        t = time.monotonic() if now is None else now
        stalled = self.observe(lag, t)
        rate = self.rate(t)
        eta = lag / rate if lag > 0 and rate else None
        return Snapshot(name, position, stream_last, lag, caught_up_once, rate, eta, stalled)
