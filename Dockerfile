# syntax=docker/dockerfile:1
# Build stage: full dev dependencies to compile TypeScript.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY client/package.json ./client/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json nest-cli.json ./
COPY client ./client
COPY src ./src
# Builds the client SDK (its browser bundle serves /demo) and then the gateway.
RUN npm run build && npm prune --omit=dev

# Runtime stage: compiled code and production dependencies only, as the unprivileged node user.
FROM node:22-bookworm-slim
ENV NODE_ENV=production PORT=3000
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --from=build --chown=node:node /app/client/package.json ./client/package.json
COPY --from=build --chown=node:node /app/client/dist ./client/dist
# The console links the measured presence accuracy (served as text at /console/presence-accuracy.md).
COPY --chown=node:node docs/presence-accuracy.md ./docs/presence-accuracy.md
USER node
EXPOSE 3000
# Liveness only: readiness (/health/ready) is for the load balancer, which should stop routing to
# an instance whose Redis is down without the orchestrator restarting it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# SIGTERM drains (see README); keep the grace below Docker's 10 s stop timeout.
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
