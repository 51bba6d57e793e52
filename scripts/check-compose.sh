#!/usr/bin/env bash
# Validates docker-compose.yml the way `docker compose config -q` does: parses the file, checks it
# against the Compose Specification's schema, interpolates every variable and checks that what it
# references exists. No Docker engine is needed. Exits non-zero when the file is invalid.
#
#   scripts/check-compose.sh [FILE]      FILE defaults to docker-compose.yml
#
# The checker is found in this order: DOCKER_COMPOSE_PATH; `docker compose` or `docker-compose` on
# PATH when at least MIN_VERSION; else scripts/compose-check, a small Go program on the Compose
# Specification's own loader (compose-go, the library Docker Compose parses and validates with),
# built with the local Go toolchain into .tools/go/bin: about a minute from an empty Go cache on
# the 2-core machine (Docker Compose itself takes nine), instant afterwards, and built again when
# its go.mod, go.sum or main.go change.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Oldest Compose accepted from PATH: top-level `configs` with inline `content` need 2.23.1.
MIN_VERSION=2.24.0
CHECKER_SRC="$ROOT/scripts/compose-check"
TOOLS_BIN="$ROOT/.tools/go/bin"
CHECKER="$TOOLS_BIN/compose-check"
# What the build in .tools was made from; a different one means it is built again.
CHECKER_STAMP="$CHECKER.source-sha256"

FILE="${1:-$ROOT/docker-compose.yml}"
[ -f "$FILE" ] || { echo "check-compose: no such file: $FILE" >&2; exit 2; }
FILE="$(cd "$(dirname "$FILE")" && pwd)/$(basename "$FILE")"

log() { echo "check-compose: $*" >&2; }

# "Docker Compose version v2.29.1" / "2.29.1-desktop.1" / "v5.5.1" → 2.29.1
version_of() {
  "$@" version --short 2>/dev/null | sed -E 's/^v//; s/[^0-9.].*$//' | head -n 1
}

at_least() { # at_least HAVE WANT
  [ -n "$1" ] && [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]
}

checker_source_sum() {
  (cd "$CHECKER_SRC" && cat go.mod go.sum main.go) | sha256sum | cut -d' ' -f1
}

build_checker() {
  command -v go >/dev/null 2>&1 || {
    log "Go is needed to build scripts/compose-check (or install Docker Compose >= $MIN_VERSION, or set DOCKER_COMPOSE_PATH)"
    exit 1
  }
  log "building scripts/compose-check (compose-go $(sed -nE 's#^require github.com/compose-spec/compose-go/v2 (v[^ ]+)$#\1#p' "$CHECKER_SRC/go.mod")) with Go into .tools/go/bin (first run, and after it changes)…"
  local started=$SECONDS
  mkdir -p "$TOOLS_BIN"
  (
    cd "$CHECKER_SRC"
    # -mod=readonly: exactly the pinned go.sum; -modcacherw: a module cache that rm -rf can remove.
    GOFLAGS=-modcacherw GOWORK=off go build -mod=readonly -buildvcs=false -trimpath -ldflags "-s -w" \
      -o "$CHECKER.tmp.$$" .
  )
  mv -f "$CHECKER.tmp.$$" "$CHECKER"
  checker_source_sum >"$CHECKER_STAMP"
  log "built $("$CHECKER" version) in $((SECONDS - started)) s"
}

COMPOSE=()
if [ -n "${DOCKER_COMPOSE_PATH:-}" ]; then
  [ -x "$DOCKER_COMPOSE_PATH" ] || { log "DOCKER_COMPOSE_PATH=$DOCKER_COMPOSE_PATH is not executable"; exit 1; }
  COMPOSE=("$DOCKER_COMPOSE_PATH")
elif command -v docker >/dev/null 2>&1 && at_least "$(version_of docker compose)" "$MIN_VERSION"; then
  COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null 2>&1 && at_least "$(version_of docker-compose)" "$MIN_VERSION"; then
  COMPOSE=(docker-compose)
else
  if [ ! -x "$CHECKER" ] || [ "$(cat "$CHECKER_STAMP" 2>/dev/null)" != "$(checker_source_sum)" ]; then
    build_checker
  fi
  COMPOSE=("$CHECKER")
fi

# The secrets the file requires (${VAR:?…}) get placeholders; nothing else comes from this
# shell or from a .env file, so the result does not depend on the machine.
PLACEHOLDERS=(
  POSTGRES_PASSWORD=placeholder
  STRIPE_SECRET_KEY=sk_test_placeholder
  STRIPE_WEBHOOK_SECRET=whsec_placeholder
  BILLING_API_KEYS=placeholder-api-key-0001
  TEMPORAL_PAYLOAD_KEYS=k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
  TEMPORAL_CODEC_TOKEN=placeholder_codec_token_0123456789
)
compose_config() { # compose_config VAR=value… — runs `config -q` with exactly those variables
  env -i PATH="$PATH" HOME="${HOME:-/tmp}" "$@" \
    "${COMPOSE[@]}" --project-directory "$(dirname "$FILE")" --env-file /dev/null -f "$FILE" config -q
}

log "$("${COMPOSE[@]}" version) · $FILE"
if ! compose_config "${PLACEHOLDERS[@]}"; then
  log "INVALID: $FILE"
  exit 1
fi

# The monitoring profile's services (Prometheus, Grafana) and the files they mount.
if ! compose_config COMPOSE_PROFILES=monitoring "${PLACEHOLDERS[@]}"; then
  log "INVALID: $FILE (with --profile monitoring)"
  exit 1
fi
for mounted in $(grep -oE '^ *- \./ops/[^:]+' "$FILE" | sed -E 's/^ *- \.\///'); do
  if [ ! -e "$(dirname "$FILE")/$mounted" ]; then
    log "INVALID: $FILE mounts ./$mounted, which does not exist"
    exit 1
  fi
done

# Secrets have no defaults: leaving any one out must stop Compose.
for i in "${!PLACEHOLDERS[@]}"; do
  name="${PLACEHOLDERS[$i]%%=*}"
  others=("${PLACEHOLDERS[@]:0:$i}" "${PLACEHOLDERS[@]:$((i + 1))}")
  if compose_config "${others[@]}" 2>/dev/null; then
    log "INVALID: $FILE accepts a missing $name (a secret must be required with \${$name:?…})"
    exit 1
  fi
done

# temporal-setup registers the custom search attributes the workflows set: its list must be the
# one in workflows/shared/search-attributes.ts, or workflows fail on an unknown attribute.
ATTRIBUTES_TS="$ROOT/workflows/shared/search-attributes.ts"
if [ -f "$ATTRIBUTES_TS" ] && grep -q 'for attribute in ' "$FILE"; then
  in_code="$(grep -oE "defineSearchAttributeKey\('[A-Za-z0-9_]+'" "$ATTRIBUTES_TS" | cut -d"'" -f2 | sort | xargs)"
  in_compose="$(sed -nE 's/^ *for attribute in ([A-Za-z0-9_ ]+); do *$/\1/p' "$FILE" | tr ' ' '\n' | sed '/^$/d' | sort | xargs)"
  if [ "$in_code" != "$in_compose" ]; then
    log "INVALID: $FILE registers the search attributes [$in_compose] but workflows/shared/search-attributes.ts defines [$in_code]"
    exit 1
  fi
fi

log "OK: $FILE"
