# Small runtime image: the gateway only (no test extras), as a non-root user.
# Build: docker build -t llm-gateway .    Run: docker run -p 8080:8080 -v $PWD/config:/config:ro llm-gateway
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install --no-cache-dir --prefix=/install '.[bedrock]'

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Operator withdrawals, drills and the audit log (SQLite) live here; mount a volume to keep them across
# container replacements. SQLite is for one host: never share it over a network volume. Replicas on several
# hosts use `store: {backend: postgres}` and `state: {backend: redis}` (see deploy/kubernetes, deploy/compose.yaml).
ENV GATEWAY_STATE_DIR=/var/lib/gateway
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin gateway \
    && mkdir -p /var/lib/gateway && chown gateway /var/lib/gateway
USER gateway
EXPOSE 8080
# The config is mounted from outside; secrets arrive as environment variables referenced by ${NAME} in it.
VOLUME ["/config", "/var/lib/gateway"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["gateway", "serve", "--host", "0.0.0.0", "--port", "8080"]
CMD ["--config", "/config/gateway.yaml"]
