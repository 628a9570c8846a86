"""Venue adapters, one package per real venue (feed + broker client), found by the core
through the ``tradeloop.venues`` entry points; see ``tradeloop.venue`` for the contract."""
