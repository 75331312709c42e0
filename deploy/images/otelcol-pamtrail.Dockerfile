# otelcol-pamtrail, the collector distribution. Built by deploy/images/build.sh
# (make images): the static ocb-built binary, a default config for containers
# (otelcol-pamtrail.yaml), healthprobe for the HEALTHCHECK, passwd/group with
# the numeric user, the CA bundle.
FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="otelcol-pamtrail" \
      org.opencontainers.image.description="pamtrail's OpenTelemetry Collector: OTLP in, session processor, Elasticsearch out" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/pamtrail/pamtrail" \
      org.opencontainers.image.documentation="https://github.com/pamtrail/pamtrail/tree/main/deploy"
COPY rootfs/ /
# The persistent, encrypted sending queue and the session state.
COPY --chown=65532:65532 state/ /var/lib/otelcol-pamtrail/
USER 65532:65532
WORKDIR /var/lib/otelcol-pamtrail
VOLUME ["/var/lib/otelcol-pamtrail"]
# GOGC=400 cuts the collector's CPU per record by about a quarter against
# Go's default (make bench) for a larger heap; GOMEMLIMIT caps it. Override
# both with the container's memory limit (the Helm chart sets them from
# collector.gc).
ENV PAMTRAIL_ES_URL=http://elasticsearch:9200 \
    PAMTRAIL_QUEUE_KEY_FILE=/run/secrets/collector-queue-keys \
    GOGC=400 \
    GOMEMLIMIT=1GiB
# OTLP/gRPC, health_check, Prometheus self-metrics
EXPOSE 4317 13133 8888
HEALTHCHECK --interval=10s --timeout=6s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/healthprobe", "http://127.0.0.1:13133/"]
ENTRYPOINT ["/usr/local/bin/otelcol-pamtrail"]
CMD ["--config", "/etc/otelcol-pamtrail/config.yaml"]
