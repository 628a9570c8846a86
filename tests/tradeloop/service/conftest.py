"""The replay server fixture of the daemon tests (see ``daemons.py``)."""

from tests.tradeloop.service.daemons import replay_server

__all__ = ["replay_server"]
