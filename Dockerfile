# syntax=docker/dockerfile:1

# ---- build: compile TypeScript, better-sqlite3's native addon and ours (native/pbkdf2) ----
FROM node:20-bookworm-slim AS build
WORKDIR /opt/vigil
# better-sqlite3 falls back to node-gyp when no prebuilt binary matches this Node/libc/arch.
# Versions are pinned by the base image's Debian release; pinning them again would only rot.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# Manifests first, so a source change does not redo the slow native install.
COPY package.json package-lock.json ./
# --ignore-scripts: package.json's own "prepare" would build before src/ is here. The one dependency
# whose install script matters, better-sqlite3 (native addon), is then built on its own.
RUN npm ci --ignore-scripts \
 && npm rebuild better-sqlite3
COPY native ./native
RUN npm run build:native
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev

# ---- runtime: no compiler, no dev dependencies, no root ----
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    VIGIL_CONFIG=/etc/vigil/vigil.yaml \
    VIGIL_STORAGE_PATH=/var/lib/vigil/vigil.sqlite \
    VIGIL_LISTENERS_HTTP_HOST=0.0.0.0
# The storage path above and the HTTP host are set here rather than in the file so that a mounted
# /etc/vigil/vigil.yaml does not have to repeat them (the environment wins over the file).
# 0.0.0.0: on loopback, /metrics and /healthz are unreachable from outside the container.
RUN groupadd --system vigil \
 && useradd --system --gid vigil --home-dir /var/lib/vigil --shell /usr/sbin/nologin vigil \
 && mkdir -p /etc/vigil /var/lib/vigil \
 && chown vigil:vigil /var/lib/vigil
WORKDIR /opt/vigil
# Built in the same base image, so the native addon matches this Node ABI and glibc.
COPY --from=build /opt/vigil/node_modules ./node_modules
COPY --from=build /opt/vigil/dist ./dist
COPY --from=build /opt/vigil/native/pbkdf2/build/Release/vigil_pbkdf2.node ./native/pbkdf2/build/Release/
COPY package.json ./
COPY config ./config
COPY config/vigil.example.yaml /etc/vigil/vigil.yaml
USER vigil
# The SQLite database and the generated self-signed certificate must outlive the container.
VOLUME ["/var/lib/vigil"]
EXPOSE 5222 5269 5280 5281
# Slim images have no curl or wget; node is there anyway.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "require('http').get('http://127.0.0.1:' + (process.env.VIGIL_LISTENERS_HTTP_PORT || 5280) + '/healthz', (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1)).setTimeout(4000, () => process.exit(1))"]
# Vigil drains on SIGTERM within shutdown.timeout (10s); give `docker stop` a longer -t if you raise it.
STOPSIGNAL SIGTERM
# Exec form: node receives signals directly (a shell would swallow them). As PID 1 it does not reap
# orphans; run with --init (compose: init: true) if that matters.
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["start"]
