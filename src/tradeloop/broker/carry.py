"""What a simulated book carries besides its orders and fills: cash taken outside fills
(``Charge``: borrow fees) and the UTC day the borrow fees were last charged up to. Pure.

A journal keeps ``carry_state`` with every commit (the paper daemon's ``live_state`` meta);
``restore_carry`` takes the cash of every charge again after the fills are re-applied and
gives back the fee day, so a restart neither skips a day's fee nor charges one twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tradeloop.broker.margin import Charge
from tradeloop.errors import ConfigError

if TYPE_CHECKING:
    from tradeloop.broker.book import OrderBook

__all__ = ["carry_state", "restore_carry"]


def carry_state(book: OrderBook, fee_day: int | None) -> dict[str, Any]:
    """The charges and the fee day as plain values."""
    return {
        "fee_day": fee_day,
        "charges": [[c.ts_ns, c.asset_id, c.amount, c.reason] for c in book.charges],
    }


def restore_carry(book: OrderBook, state: Mapping[str, Any]) -> int | None:
    """Take each journaled charge's cash again (``book`` holds the re-applied fills, no
    charges yet); return the fee day (None: never charged, or a journal from before)."""
    if book.charges:
        raise ConfigError("restore_carry() needs a book without charges (a fresh restore)")
    try:
        for ts_ns, asset_id, amount, reason in state.get("charges", ()):
            book.portfolio.cash -= float(amount)
            book.charges.append(Charge(int(ts_ns), str(asset_id), float(amount), str(reason)))
        fee_day = state.get("fee_day")
        return None if fee_day is None else int(fee_day)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"journal live_state: charges not understood ({err}). Fix: restore from a journal "
            "this version wrote, or start with --fresh"
        ) from None
