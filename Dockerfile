# syntax=docker/dockerfile:1
# primed container image: built on debian:bookworm, run on debian:bookworm-slim with only the
# runtime libraries, as a non-root user, configured through PRIMED_* environment variables.
#
#   docker build -t primed .
#   docker run --rm -p 8080:8080 -e PRIMED_WORKERS=4 primed
#
# Every RUN line only calls scripts/docker-steps.sh: tests/test_docker_steps.sh runs the same
# stages on each `make test` (no Docker engine needed) and fails if a RUN line does anything else.
# Keep the build context small and free of host objects with a .dockerignore listing build/.

FROM debian:bookworm AS build
# Only the docker build sets apply: the script then creates the user and drops the apt lists.
ARG DOCKER_STEPS_MODE=apply
WORKDIR /src
COPY . .
RUN scripts/docker-steps.sh build

FROM debian:bookworm-slim AS runtime
ARG DOCKER_STEPS_MODE=apply
# Settings (one name per flag: --workers ↔ PRIMED_WORKERS). Set before the runtime RUN so its
# smoke test starts primed with exactly this configuration.
ENV PRIMED_LISTEN=0.0.0.0:8080 PRIMED_DEBUG_LISTEN=127.0.0.1:6060 PRIMED_LOG_FORMAT=json PRIMED_SHUTDOWN_TIMEOUT=20 PRIMED_REQUEST_TIMEOUT_MS=30000 PRIMED_MAX_CONNECTIONS=1024
COPY scripts/install-deps.sh scripts/docker-steps.sh scripts/lib.sh /opt/primed/scripts/
COPY --from=build /out/ /
RUN /opt/primed/scripts/docker-steps.sh runtime
USER 10001:10001
EXPOSE 8080
# The port follows PRIMED_LISTEN, so overriding the listen address keeps the check right.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS --max-time 2 "http://127.0.0.1:${PRIMED_LISTEN##*:}/healthz" >/dev/null || exit 1
# SIGTERM drains in-flight requests for up to PRIMED_SHUTDOWN_TIMEOUT seconds, then exits 0;
# give `docker stop` a longer -t than that (e.g. docker stop -t 30).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/primed"]
