# syntax=docker/dockerfile:1
# greenlight: build with the full toolchain, run from a slim image as a non-root user.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY agent ./agent
COPY probes ./probes
COPY rules ./rules
COPY config ./config
COPY simulator ./simulator
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim AS runtime
# --max-semi-space-size=2: a 2 MiB young generation instead of up to 16 MiB per semi-space.
# At 1,000 series RSS falls from about 165 to 138 MB, and CPU per probe does not rise (README, Benchmarks).
# GLIBC_TUNABLES: malloc gives back what V8's threads free instead of keeping it (about 9 MB; README, Memory).
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=2 \
    GLIBC_TUNABLES=glibc.malloc.trim_threshold=131072 \
    GREENLIGHT_LISTEN=0.0.0.0:9464 \
    GREENLIGHT_DATA_DIR=/var/lib/greenlight
WORKDIR /app
RUN groupadd --system greenlight && useradd --system --gid greenlight --home-dir /app --shell /usr/sbin/nologin greenlight \
 && mkdir -p /var/lib/greenlight && chown greenlight:greenlight /var/lib/greenlight
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY agent/status-page ./agent/status-page
COPY config/greenlight.yaml config/greenlight.schema.json ./config/
USER greenlight
VOLUME ["/var/lib/greenlight"]
EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "const p=(process.env.GREENLIGHT_LISTEN||'').split(':').pop()||'9464';fetch('http://127.0.0.1:'+p+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/greenlight.js"]
CMD ["run", "--config", "config/greenlight.yaml"]
