# The C-SPA worker image: also runs `topics` and `simulate` (see docker-compose.yml).
#
#   docker build -t cspa-live .
#   docker run --rm -e CSPA_BROKER=kafka:9092 -p 127.0.0.1:6066:6066 \
#       -e CSPA_WEB_CONFIG_FILE=/run/secrets/web_config ... cspa-live
#
# CSPA_WEB_HOST=0.0.0.0: outside a container the worker serves /metrics, /figures,
# /ready (and /live, on CSPA_LIVE_PORT) on 127.0.0.1 only. Inside one, loopback is the
# container's own, so Prometheus (another container) could not scrape it; the image binds
# all interfaces of the container instead. Only the compose network sees the port unless
# you publish it, and then publish it on 127.0.0.1 (as docker-compose.yml does for every
# port). Bound beyond loopback, the worker refuses to start without CSPA_WEB_CONFIG_FILE
# (TLS and basic auth, docs/security.md) unless CSPA_WEB_INSECURE=true.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CSPA_WEB_HOST=0.0.0.0 \
    CSPA_WEB_PORT=6066 \
    CSPA_LIVE_PORT=6067 \
    CSPA_DATA_DIR=/var/lib/cspa

WORKDIR /app

# Dependencies first (pinned in pyproject.toml), so code edits reuse this layer.
COPY pyproject.toml README.md ./
RUN mkdir stream && touch stream/__init__.py \
    && pip install . \
    && pip uninstall -y cspa-live \
    && rm -rf stream build *.egg-info

# Only what the worker reads at run time: code, event contract, timescale rules.
# setup.py compiles the partition check's murmur2 (stream/contract/_murmur2.c); the
# compiler is removed once it has (the extension needs only libc), and the build fails
# if the worker would fall back to the pure-Python murmur2.
COPY setup.py ./
COPY stream/ stream/
COPY topics/ topics/
COPY config/ config/
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-deps --editable . \
    && apt-get purge -y --auto-remove gcc libc6-dev && rm -rf /var/lib/apt/lists/* \
    && python -c "from stream.contract.partitioner import COMPILED; assert COMPILED" \
    && useradd --system --uid 10001 --home-dir /var/lib/cspa --create-home cspa

USER cspa
EXPOSE 6066 6067

# Installed in place (editable), so `python -m stream` and the `cspa` script both find
# topics/ and config/ beside the package (stream.settings.ROOT = /app).
CMD ["python", "-m", "stream", "worker"]
