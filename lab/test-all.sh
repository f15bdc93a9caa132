#!/usr/bin/env bash
# lab/test-all.sh: THE command for a newcomer and for CI. Installs what the tests need
# (Debian 12; apt only when something is missing), builds every target, runs every test.
# Tests start their own private servers through lab/dovecot.sh; nothing here stays running.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash lab/install.sh

# The project's standing checks come first: they are quick and fail early.
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

cargo build --workspace --all-targets

if cargo nextest --version >/dev/null 2>&1; then
    # --no-fail-fast: one failure must not hide the others.
    cargo nextest run --workspace --no-fail-fast
    # nextest does not run doctests.
    cargo test --doc --workspace
else
    echo "test-all.sh: cargo-nextest not found; using cargo test" >&2
    cargo test --workspace
fi

# Every parser fed by the network, fuzzed briefly: proves the targets build and run.
bash fuzz/run.sh --seconds 10
