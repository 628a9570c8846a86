"""Alpaca (US equities): minute bars from the v2 data stream, orders through the trading API.

``venue = "alpaca"`` in the config finds ``VENUE`` through the ``tradeloop.venues`` entry
points. Keys come from ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY``; the default trading
endpoint is the paper one. See ``config`` for the ``[venue]`` table and ``README.md`` for the
venue rules, fills, fees and the error map.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.alpaca.broker import AlpacaClient
from adapters.alpaca.config import AlpacaSettings
from adapters.alpaca.feed import AlpacaFeed

__all__ = ["VENUE", "AlpacaClient", "AlpacaFeed", "AlpacaSettings", "AlpacaVenue"]


class AlpacaVenue:
    """The adapter object the core loads: a name, a feed and a client from ``[venue]``."""

    name = "alpaca"

    def feed(self, settings: Mapping[str, Any]) -> AlpacaFeed:
        return AlpacaFeed(AlpacaSettings.from_mapping(settings))

    def client(self, settings: Mapping[str, Any]) -> AlpacaClient:
        return AlpacaClient(AlpacaSettings.from_mapping(settings))


VENUE = AlpacaVenue()
