# syntax=docker/dockerfile:1
#
# flowprobe on Node 26 (the Active LTS) and Debian 12. The build stage and the
# runtime stage share the base image, so the pcap binding runs with the Node ABI
# and the libpcap it was built against.
#
#   docker build -t flowprobe .
#   docker run --net=host --cap-drop ALL --cap-add NET_RAW --cap-add NET_ADMIN \
#     --cap-add SETUID --cap-add SETGID --read-only flowprobe -i eth1 -n 127.0.0.1:9995
ARG NODE_IMAGE=node:26-bookworm-slim

FROM ${NODE_IMAGE} AS build
# node-gyp builds the pcap binding: a C++ toolchain, python3 and libpcap's headers.
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ make python3 libpcap-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY package.json package-lock.json ./
# node-gyp builds against the image's own Node headers rather than downloading
# them. It reads nodedir from its own variable, which npm passes by and never
# checks (npm 11 warns about npm_config_nodedir, its next major refuses it).
RUN npm_package_config_node_gyp_nodedir=/usr/local npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/bundle.mjs ./scripts/
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="flowprobe" \
      org.opencontainers.image.description="NetFlow v5 probe: captures a SPAN port with libpcap, exports flows to nfcapd or flow-capture" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="docker.io/library/node:26-bookworm-slim"
# Only libpcap's runtime on top of Node; npm goes, as nothing runs it here.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap0.8 \
 && rm -rf /var/lib/apt/lists/* /usr/local/lib/node_modules/npm /usr/local/bin/npm /usr/local/bin/npx
WORKDIR /app
COPY --from=build /build/package.json ./
COPY --from=build /build/node_modules ./node_modules
COPY --from=build /build/dist ./dist
# The probe starts as root to open its captures, then drops to nobody and
# nobody's own group, nogroup (FLOWPROBE_USER= turns that off). Any option can be
# set the same way: FLOWPROBE_INTERFACE, FLOWPROBE_COLLECTOR, ... (flags win).
ENV NODE_ENV=production \
    FLOWPROBE_USER=nobody
# /healthz on the probe's own --metrics-listen, read from PID 1's command line
# and the environment; with the listener off, only that the probe runs.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["/usr/local/bin/node", "/app/dist/healthcheck.js"]
# node is PID 1, no init in between: once the probe is nobody, a root init
# without CAP_KILL could not pass it docker stop's SIGTERM. The kernel delivers
# that signal to PID 1 because the probe handles it (it flushes its flows and
# exits well inside docker stop's 10 s), and the probe starts no process that
# would leave zombies for it to reap (IPCAD's connect-back helper is its own
# child, which Node waits for).
ENTRYPOINT ["/usr/local/bin/node", "/app/dist/cli.js"]
