"""The loops: the dispatcher that handles one timestamp, the replay loop, the compiled replay,
and the asyncio live runtime. Both loops run ``Dispatcher`` on the same prepared blocks."""
