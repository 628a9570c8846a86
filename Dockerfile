# tradeloop paper/live daemon: docker compose -f deploy/compose.yaml up (paper by default)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    NUMBA_CACHE_DIR=/data/numba-cache \
    TRADELOOP_RUN_STATE_DIR=/data/state \
    TRADELOOP_HEALTH_HOST=0.0.0.0
# 0.0.0.0 inside the container, so a published port reaches it; compose.yaml publishes it
# on the host's loopback only (127.0.0.1:8080)

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY adapters ./adapters
COPY examples ./examples
COPY deploy/paper.toml deploy/live-binance.toml deploy/live-alpaca.toml /etc/tradeloop/
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 tradeloop \
    && mkdir -p /data \
    && chown tradeloop:tradeloop /data

USER 10001
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["tradeloop"]
CMD ["paper", "--config", "/etc/tradeloop/paper.toml"]
