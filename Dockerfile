# syntax=docker/dockerfile:1
# One image for every specula service: `specula` is the entrypoint, the
# command picks the service (docker run specula service guest --host host-a).

# Build: compile TypeScript and generate the protobuf module, then keep only
# the production dependencies.
FROM node:20.19.5-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY proto ./proto
COPY lib ./lib
COPY services ./services
COPY sim ./sim
COPY cli ./cli
COPY bench ./bench
RUN npm run build && npm prune --omit=dev --no-audit --no-fund \
 && mkdir -p bin && ln -s ../dist/cli/specula.js bin/specula

# Run: the compiled code and its production dependencies, as the unprivileged user node.
FROM node:20.19.5-bookworm-slim
ENV NODE_ENV=production \
    SPECULA_HEALTH_PORT=8080 \
    PATH=/app/bin:$PATH
WORKDIR /app
COPY --from=build --chown=root:root /src/package.json ./
COPY --from=build --chown=root:root /src/node_modules ./node_modules
COPY --from=build --chown=root:root /src/dist ./dist
COPY --from=build --chown=root:root /src/bin ./bin
USER node
EXPOSE 8080
# Ready: connected to NATS and serving every VM (specula health asks the process's /readyz).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 CMD ["specula", "health"]
ENTRYPOINT ["specula"]
CMD ["--help"]
