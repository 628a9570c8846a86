"""When to look an order of unknown outcome up again, and when to stop. Pure: the caller
passes the time in.

A submit that timed out (or got a 5xx) may or may not have created the order, and venues
document that a just-placed order can be missing from a lookup for a while. So "not found"
is only believed after ``deadline_s`` of looking: the lookups of one order are spaced
``base_s``, 2 × ``base_s``, 4 × ``base_s``... (at most ``max_s`` apart), and a failed lookup
(a timeout, a 5xx, a rate limit) is spaced the same way. Evidence from the stream (a fill
or an order update for that client id) ends the wait at once (``forget``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Lookups"]


@dataclass(slots=True)
class _Wait:
    since_s: float
    next_s: float
    attempts: int = 0


class Lookups:
    """The lookup schedule of every order whose outcome is unknown, by client order id."""

    def __init__(self, deadline_s: float, *, base_s: float = 0.5, max_s: float = 10.0) -> None:
        self.deadline_s = deadline_s
        self.base_s = base_s
        self.max_s = max_s
        self._waits: dict[str, _Wait] = {}

    def due(self, cid: str, now_s: float) -> bool:
        """True when ``cid`` should be looked up now (the first time it is asked: at once)."""
        wait = self._waits.get(cid)
        if wait is None:
            wait = self._waits[cid] = _Wait(now_s, now_s)
        return now_s >= wait.next_s

    def missed(self, cid: str, now_s: float) -> bool:
        """A lookup found nothing (or failed): space the next one out. True once the
        deadline has passed, i.e. the order may now be believed never placed."""
        wait = self._waits.setdefault(cid, _Wait(now_s, now_s))
        wait.attempts += 1
        wait.next_s = now_s + min(self.max_s, self.base_s * 2 ** (wait.attempts - 1))
        return now_s - wait.since_s >= self.deadline_s

    def attempts(self, cid: str) -> int:
        wait = self._waits.get(cid)
        return 0 if wait is None else wait.attempts

    def waited_s(self, cid: str, now_s: float) -> float:
        wait = self._waits.get(cid)
        return 0.0 if wait is None else now_s - wait.since_s

    def forget(self, cid: str) -> None:
        """The outcome is known (looked up, or seen on the stream)."""
        self._waits.pop(cid, None)

    def __len__(self) -> int:
        return len(self._waits)
