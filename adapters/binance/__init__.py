"""Binance spot: closed-kline feed and account client for tradeloop's live mode.

``VENUE`` is what ``tradeloop.venue.load_venue("binance")`` finds (the ``tradeloop.venues``
entry point). Settings are the config's ``[venue]`` table; keys come from the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.binance.broker import BinanceClient
from adapters.binance.config import BinanceSettings
from adapters.binance.feed import BinanceFeed

__all__ = ["VENUE", "BinanceClient", "BinanceFeed", "BinanceSettings", "BinanceVenue"]


class BinanceVenue:
    """The adapter entry: builds feeds and clients from a ``[venue]`` table."""

    name = "binance"

    def feed(self, settings: Mapping[str, Any]) -> BinanceFeed:
        return BinanceFeed(BinanceSettings.from_mapping(settings))

    def client(self, settings: Mapping[str, Any]) -> BinanceClient:
        return BinanceClient(BinanceSettings.from_mapping(settings))


VENUE = BinanceVenue()
