# kmipd container image: multi-stage, runs as a non-root user, SoftHSM2 inside for evaluation.
# For production point kmipd at a network HSM's PKCS#11 module (see README, "Production HSM").
# Untested here: this workplace has no Docker engine; the file is linted by the test suite.

FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends softhsm2 libjemalloc2 tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system kmipd \
 && useradd --system --gid kmipd --home-dir /var/lib/kmipd --shell /usr/sbin/nologin kmipd \
 && mkdir -p /var/lib/kmipd \
 && chown kmipd:kmipd /var/lib/kmipd \
 && chmod 700 /var/lib/kmipd
WORKDIR /opt/kmipd
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY deploy/docker-entrypoint.sh ./docker-entrypoint.sh
USER kmipd
ENV KMIPD_DATA=/var/lib/kmipd \
    KMIPD_LISTEN=0.0.0.0:5696 \
    KMIPD_ADMIN_LISTEN=127.0.0.1:9090
VOLUME ["/var/lib/kmipd"]
EXPOSE 5696
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://' + process.env.KMIPD_ADMIN_LISTEN + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/kmipd/docker-entrypoint.sh"]
