# syntax=docker/dockerfile:1
#
# nfdump's collector (nfcapd 1.7 from Debian 12) for the compose pipeline.
FROM debian:bookworm-slim
LABEL org.opencontainers.image.title="flowprobe-nfcapd" \
      org.opencontainers.image.description="nfcapd from Debian's nfdump, collecting flowprobe's NetFlow v5" \
      org.opencontainers.image.licenses="BSD-3-Clause"
RUN apt-get update \
 && apt-get install -y --no-install-recommends nfdump \
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["/usr/bin/nfcapd"]
