#!/usr/bin/env bash
# Ape integration, from the repository root (ape-config.yaml, contracts/, tests/ape, scripts/deploy.py):
# compile the contracts with ape-solidity through tools/solc (the solcjs shim), run the Ape tests on ape-test
# (EthTester) and on ape-foundry's anvil, and `ape run deploy` on anvil.
# Ape pins web3 7.x, so it gets its own virtual environment (.venv-ape) with smartkeys installed editable
# (which also checks that the core library works on web3 7.16 / eth-account 0.13.7).
# Needs `npm ci` done (solcjs, OpenZeppelin, account-abstraction, anvil in node_modules).
#   --quick   only `ape test` on EthTester (it compiles too): no separate compile, no anvil, no deploy.
#   Other arguments go to `ape test`. SMARTKEYS_APE_VENV=DIR uses that Ape environment as it is (no installs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
VENV="${SMARTKEYS_APE_VENV:-$ROOT/.venv-ape}"
QUICK=0
if [ "${1:-}" = "--quick" ]; then QUICK=1; shift; fi

if [ ! -x node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil ] || [ ! -f node_modules/solc/package.json ]; then
  echo "error: node_modules is incomplete; run \`npm ci\` first" >&2
  exit 1
fi
if [ -n "${SMARTKEYS_APE_VENV:-}" ]; then
  [ -x "$VENV/bin/ape" ] || { echo "error: SMARTKEYS_APE_VENV=$VENV has no bin/ape; run scripts/ape_test.sh without it first" >&2; exit 1; }
  echo "== using the Ape environment $VENV as it is (SMARTKEYS_APE_VENV)"
else
  if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating $VENV"
    python3 -m venv "$VENV"
  fi
  echo "== installing Ape (eth-ape 0.8.51, ape-foundry 0.8.12, ape-solidity 0.8.6) and smartkeys into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q eth-ape==0.8.51 ape-foundry==0.8.12 ape-solidity==0.8.6
  "$VENV/bin/python" -m pip install -q -e .
  "$VENV/bin/python" -m pip check
fi

# Ape's project folder. eth-ape 0.8.51 drops every source file whose absolute path has a folder named like one
# of its built-in exclusions (ape.utils.misc.SOURCE_EXCLUDE_PATTERNS: .cache, .build, .git, ..., matched by
# ape.utils.os.path_match against every parent folder), and ape-config.yaml can add exclusions but not remove
# those: in a checkout under ~/.cache/... Ape finds no contract at all ("Nothing to compile"). There the Ape
# steps run from a copy of the files Ape reads (ape-config.yaml, pyproject.toml, contracts/, tests/,
# scripts/deploy.py) in a fresh temporary folder, with Ape's data folder next to it. Ape itself decides.
excluded_by_ape() {
  "$VENV/bin/python" -c 'import sys
from ape.utils.misc import SOURCE_EXCLUDE_PATTERNS
from ape.utils.os import path_match
sys.exit(0 if path_match(sys.argv[1], *SOURCE_EXCLUDE_PATTERNS) else 1)' "$1"
}
PROJECT="$ROOT"
WORK=""
if excluded_by_ape "$ROOT/contracts/SmartKeysAccount.sol"; then
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/smartkeys-ape.XXXXXX")"
  PROJECT="$WORK/project"
  if excluded_by_ape "$PROJECT/contracts/SmartKeysAccount.sol"; then
    echo "error: Ape ignores sources under $ROOT and under $WORK (a folder named .cache, .build, .git, ...);" \
         "set TMPDIR to a plain folder" >&2
    rm -rf "$WORK"
    exit 1
  fi
  echo "== $ROOT is inside a folder eth-ape skips (.cache, .build, .git, ...): running Ape from a copy in $PROJECT"
  mkdir -p "$PROJECT/scripts"
  cp -R ape-config.yaml pyproject.toml contracts tests "$PROJECT/"
  cp scripts/deploy.py "$PROJECT/scripts/"
  ln -s "$ROOT/node_modules" "$PROJECT/node_modules"
  rm -rf "$PROJECT/contracts/.cache" "$PROJECT/.build"
  export APE_DATA_FOLDER="$WORK/ape-data"
else
  # Keep Ape's state inside the venv, not in ~/.ape.
  export APE_DATA_FOLDER="$VENV/ape-data"
fi
# Keep py-solc-x's state inside the venv, not in ~/.solcx.
export SOLCX_BINARY_PATH="$VENV/solcx"
# py-solc-x looks for "solc-v<version>" there: register the shim as solc 0.8.30 (it finds solcjs next to itself).
mkdir -p "$SOLCX_BINARY_PATH"
ln -sfn "$ROOT/tools/solc" "$SOLCX_BINARY_PATH/solc-v0.8.30"
"$SOLCX_BINARY_PATH/solc-v0.8.30" --version | grep -q "Version: 0.8.30" || { echo "error: tools/solc is not solc 0.8.30" >&2; exit 1; }
# ape-foundry starts `anvil` from PATH.
export PATH="$ROOT/node_modules/@foundry-rs/anvil-linux-amd64/bin:$PATH"

cd "$PROJECT"
# Every step starts from a clean state: with a cached manifest (.build) and dependency sources
# (contracts/.cache), Ape 0.8.51 fails on a later run to find the contracts of contracts/test (MockTarget, ...).
# The trap leaves nothing behind.
clean() { rm -rf "$PROJECT/.build" "$PROJECT/contracts/.cache"; }
finish() { clean; if [ -n "$WORK" ]; then rm -rf "$WORK"; fi; }
trap finish EXIT
if [ "$QUICK" = 0 ]; then
  echo "== ape compile (ape-solidity -> tools/solc -> solcjs)"
  clean && "$VENV/bin/ape" compile --force
fi
echo "== ape test on ape-test (EthTester)"
clean && "$VENV/bin/ape" test -p no:cacheprovider "$@"
if [ "$QUICK" = 1 ]; then exit 0; fi
echo "== ape test on ape-foundry (anvil)"
clean && "$VENV/bin/ape" test -p no:cacheprovider --network ethereum:local:foundry "$@"
echo "== ape run deploy on ape-foundry (anvil)"
clean && "$VENV/bin/ape" run deploy --network ethereum:local:foundry
