#!/usr/bin/env bash
# Mutation testing of the security-critical code (issue 19; figures in
# docs/SECURITY.md, "Mutation score"). Too slow for every CI run: run it by
# hand after changing the files below or their tests.
#
#   scripts/mutants.sh                 # every mutant of the files below
#   scripts/mutants.sh --shard 0/4     # a quarter of them (any cargo-mutants flag)
#
# Two passes: every mutant against its own crate's unit and integration tests,
# then the survivors against auth-core's, auth-store-memory's (the engine
# conformance suite) and auth-axum's together. Doctests are left out
# (`--tests`): each compiles a program of its own. Results: target/mutants/pass1
# and target/mutants/mutants.out (caught.txt, missed.txt, unviable.txt,
# timeout.txt; previously_caught.txt is pass 1's catch).
#
# cargo-mutants (crates.io) is installed if missing. It builds in a copy of the
# tree with its own target directory, so CARGO_TARGET_DIR is unset here: a
# shared target directory would be rebuilt for every mutant.
set -euo pipefail
cd "$(dirname "$0")/.."

MUTANTS_VERSION=27.1.0
if ! cargo mutants --version 2>/dev/null | grep -q "$MUTANTS_VERSION"; then
  cargo install --locked cargo-mutants --version "$MUTANTS_VERSION"
fi

out=target/mutants
mkdir -p "$out"
unset CARGO_TARGET_DIR
# No debug info: faster builds and links of every mutant, same tests.
export CARGO_PROFILE_DEV_DEBUG=0 CARGO_PROFILE_TEST_DEBUG=0
export CARGO_TERM_COLOR=never

files=(
  --file 'auth-core/src/engine/*.rs'
  --file auth-core/src/token.rs
  --file auth-core/src/password/policy.rs
  --file auth-core/src/email.rs
  --file auth-axum/src/csrf.rs
  --file auth-axum/src/meta.rs
)
common=(--cargo-test-arg=--tests --minimum-test-timeout 60 --output "$out")

start=$(date +%s)
# Pass 1: each mutant against its own crate's tests (fast: a few seconds each).
cargo mutants "${files[@]}" "${common[@]}" "$@" || true
rm -rf "$out/pass1" && cp -r "$out/mutants.out" "$out/pass1"
# Pass 2: what pass 1 did not catch, against every suite that exercises these
# files: auth-core's, the engine conformance suite (run by auth-store-memory)
# and auth-axum's HTTP tests. The same as running pass 2 on every mutant, in a
# fraction of the time.
status=0
cargo mutants "${files[@]}" "${common[@]}" --iterate \
  --test-package auth-core --test-package auth-store-memory --test-package auth-axum \
  "$@" || status=$?
end=$(date +%s)

count() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
echo
echo "mutants: $(( (end - start) / 60 )) min $(( (end - start) % 60 )) s"
echo "caught   $(( $(count "$out/pass1/caught.txt") + $(count "$out/mutants.out/caught.txt") ))"
for outcome in missed unviable timeout; do
  printf '%-9s%s\n' "$outcome" "$(count "$out/mutants.out/$outcome.txt")"
done
# cargo-mutants exits 2 when a mutant was missed, 3 on a timeout: pass that on.
exit "$status"
