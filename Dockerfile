# sla-bot: one image; `sla-bot serve` by default (web + worker), or `web` / `worker` for replicas.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY sla_bot ./sla_bot
COPY integrations ./integrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SLA_BOT_HOST=0.0.0.0 \
    SLA_BOT_PORT=8080 \
    SLA_BOT_LOG_FORMAT=json \
    SLA_BOT_RULES_DIR=/app/rules \
    DATABASE_URL=sqlite:////data/sla-bot.db
RUN useradd --create-home --uid 10001 slabot \
    && mkdir -p /data && chown slabot:slabot /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
COPY rules ./rules
USER slabot
VOLUME ["/data"]
EXPOSE 8080
# One check for every role: `serve` and `web` through /readyz (serve's includes its worker's
# heartbeat), `worker` through its own heartbeat in the database (it has no port).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["sla-bot", "health"]
STOPSIGNAL SIGTERM
CMD ["sla-bot", "serve"]
