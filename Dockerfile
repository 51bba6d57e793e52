# syntax=docker/dockerfile:1
#
# One image for every process of the service; the command picks the role:
#   node dist/api/main.js      the HTTP API and Stripe webhook (default)
#   node dist/worker/main.js   the Temporal worker
#   node dist/db/migrate.js    applies pending migrations, then exits (a one-shot)
# docker-compose.yml runs all three from this image.
#
# Debian slim rather than Alpine: the Temporal worker's native core (@temporalio/core-bridge)
# and @swc/core, which bundles the workflows at start-up, ship glibc builds.

# Node 24, the Active LTS line (package.json "engines" lists what the dependencies support).
ARG NODE_VERSION=24

# --- build: every dependency, TypeScript → dist/ ----------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app

# Install scripts are not run: the ones package.json's "allowScripts" approves only matter to the
# development tools (embedded PostgreSQL, esbuild for tsx), the compiler needs none of them, and
# the image's npm may be older than the "allowScripts" feature and would otherwise run them all.
# That skips the project's own postinstall too, so the dependency patches (patches/) are applied
# here, failing the build if one no longer applies.
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --ignore-scripts --no-audit --no-fund && npx --no patch-package --error-on-fail

COPY . .
RUN npm run build

# --- runtime: production dependencies and the compiled output only ---------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app

# No install script of a production dependency is needed at run time (@swc/core's and
# protobufjs' only check their install; @scarf/scarf's reports analytics and is not approved).
# The dependency patches are applied here too: the worker and the API run the patched postgres.js.
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && npx --no patch-package --error-on-fail \
  && npm cache clean --force

# dist/ holds the compiled code plus db/migrations and config/catalog, copied by `npm run build`.
# The files stay owned by root: the service cannot rewrite its own code.
COPY --from=build /app/dist ./dist

USER node
EXPOSE 3000
CMD ["node", "dist/api/main.js"]
