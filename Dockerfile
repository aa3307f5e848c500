# ztp server image: docs/installing.md ("Container image") says how to build, run and configure it.
#
#   docker build -t ztp .        (podman build --format docker -t ztp .: OCI drops HEALTHCHECK)
#   podman run -d -p 8080:8080 -v ztp-data:/data ztp
#
# Stage 1 compiles better-sqlite3 and bundles the CLI into dist/; stage 2 keeps only dist/, the
# production node_modules and the compiled addon, and runs as the unprivileged user `node`.

FROM node:20-bookworm-slim AS build
# better-sqlite3 is compiled here: its prebuilt binaries are a download that not every build
# network allows, and building from source makes the image the same everywhere.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
# Headers of the image's own Node (node-gyp would otherwise download them); no prebuilt download.
ENV npm_config_nodedir=/usr/local \
    npm_config_build_from_source=true \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
WORKDIR /build
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` (the build) needs the sources, copied below; the packages whose
# install scripts package.json's allowScripts reviews are rebuilt explicitly.
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3 esbuild
COPY tsconfig.json ./
COPY bin/ bin/
COPY scripts/build.mjs scripts/build-console.mjs scripts/
COPY src/ src/
RUN npm run build \
  && find dist -name '*.map' -delete \
  && npm prune --omit=dev --ignore-scripts \
  && cd node_modules/better-sqlite3 \
  && mv build/Release/better_sqlite3.node /tmp/ \
  && rm -rf build deps src \
  && mkdir -p build/Release \
  && mv /tmp/better_sqlite3.node build/Release/

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    ZTP_HOST=0.0.0.0 \
    ZTP_PORT=8080 \
    ZTP_DATABASE=/data/ztp.db
WORKDIR /app
COPY --from=build /build/package.json ./
COPY --from=build /build/bin/ bin/
COPY --from=build /build/dist/ dist/
COPY --from=build /build/node_modules/ node_modules/
# `ztp` on the PATH, so `docker exec <container> ztp token create ...` works as the docs write it.
RUN ln -s /app/bin/ztp.mjs /usr/local/bin/ztp \
  && mkdir /data \
  && chown node:node /data
VOLUME /data
USER node
EXPOSE 8080
# /readyz: 200 once the database answers, 503 while it does not. Over HTTPS when ZTP_TLS_CERT is
# set (the server's name is not 127.0.0.1, so its certificate is not checked for this probe).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD NODE_TLS_REJECT_UNAUTHORIZED=0 node -e "fetch((process.env.ZTP_TLS_CERT ? 'https' : 'http') + '://127.0.0.1:' + (process.env.ZTP_PORT || 8080) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
# ztp serve drains on SIGTERM: stops accepting, finishes requests and trigger calls for up to
# ZTP_SHUTDOWN_GRACE (5 s by default), closes the database. Give it more than that to stop.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/ztp.mjs"]
CMD ["serve"]
