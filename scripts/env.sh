# shellcheck shell=bash
# Sourced by every pixport script: where tools, caches and the shared cargo
# target folder live. All of it is machine-wide (under $PIXPORT_CACHE) so a
# fresh clone on the same machine reuses the expensive builds; point the
# variables at empty folders to prove a cold start.

PIXPORT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PIXPORT_ROOT
export PIXPORT_CACHE="${PIXPORT_CACHE:-$HOME/.cache/pixport}"
export PIXPORT_TOOLS="${PIXPORT_TOOLS:-$PIXPORT_CACHE/tools}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PIXPORT_CACHE/target}"
export PIXPORT_STATE="${PIXPORT_STATE:-$PIXPORT_ROOT/.state}"
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$PIXPORT_CACHE/pip}"
# Test and benchmark photos, made by tests/photos/generate.py during setup.
export PIXPORT_PHOTOS="${PIXPORT_PHOTOS:-$PIXPORT_CACHE/photos}"

# worker-build would download wasm-bindgen, wasm-opt and esbuild from GitHub;
# these point it at the pinned local copies instead. node_modules/.bin holds
# this platform's esbuild (npm installs the matching @esbuild/<os>-<arch>).
export WASM_BINDGEN_BIN="$PIXPORT_TOOLS/bin/wasm-bindgen"
export WASM_OPT_BIN="$PIXPORT_ROOT/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$PIXPORT_ROOT/node_modules/.bin/esbuild"

# Node 22 from the pinned npm packages (package.json optionalDependencies:
# npm installs the one for this OS and CPU, as node_modules/.bin/node) comes
# first: current wrangler needs it and Node 20's node:wasi crashes on large
# images.
export PATH="$PIXPORT_TOOLS/bin:$PIXPORT_ROOT/node_modules/.bin:$PIXPORT_ROOT/.venv/bin:$PATH"

# Offline-friendly wrangler: no Cloudflare API lookups, no telemetry.
export CLOUDFLARE_CF_FETCH_ENABLED=false
export WRANGLER_SEND_METRICS=false

# local/ports.env fills in what the environment does not already set (or
# sets empty), so a second checkout can run its own stack on other ports.
# The shell's reader of the file; local/stack.py and local/env read it alike.
while IFS='=' read -r key value || [ -n "$key" ]; do
  case "$key" in '' | \#*) continue ;; esac
  [ -n "${!key:-}" ] || export "$key=$value"
done <"$PIXPORT_ROOT/local/ports.env"
unset key value

log() { printf '\033[1m[pixport]\033[0m %s\n' "$*" >&2; }
