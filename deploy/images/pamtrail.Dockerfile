# pamtrail gateway and CLI. Built by deploy/images/build.sh (make images) from
# a context it prepares: a static binary, passwd/group with the numeric
# pamtrail user, the CA bundle. FROM scratch: nothing to pull, nothing to patch.
FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="pamtrail" \
      org.opencontainers.image.description="pamtrail gateway: records PostgreSQL and SSH sessions into an encrypted spool and uploads them over OTLP" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/pamtrail/pamtrail" \
      org.opencontainers.image.documentation="https://github.com/pamtrail/pamtrail/tree/main/deploy"
COPY rootfs/ /
# The state directory is owned by the image user so a fresh named volume
# inherits it: the spool and the generated SSH host key live there.
COPY --chown=65532:65532 state/ /var/lib/pamtrail/
USER 65532:65532
WORKDIR /var/lib/pamtrail
VOLUME ["/var/lib/pamtrail"]
# postgres, ssh, metrics + /healthz
EXPOSE 6432 2222 9464
HEALTHCHECK --interval=10s --timeout=6s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/pamtrail", "health", "--url", "http://127.0.0.1:9464/healthz"]
ENTRYPOINT ["/usr/local/bin/pamtrail"]
CMD ["gateway", "--config", "/etc/pamtrail/gateway.yaml"]
