"""The live bar-stream edge: the wire codec, the WebSocket feed, its supervisor, and history
replayed as a stream (in process, or served over a local WebSocket).

Network code loads on first use: ``tradeloop.stream.codec`` and ``tradeloop.stream.replay`` are
pure enough for a backtest process; ``websocket``, ``supervisor`` and ``server`` import
websockets/aiohttp.
"""
