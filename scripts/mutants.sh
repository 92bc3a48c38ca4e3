#!/usr/bin/env bash
# Mutation testing of the security-critical code (issue 19; figures in
# docs/SECURITY.md, "Mutation score"). Too slow for every CI run: run it by
# hand after changing the files below or their tests.
#
#   scripts/mutants.sh                 # every mutant of the files below
#   scripts/mutants.sh --shard 0/4     # a quarter of them (any cargo-mutants flag)
#
# Each mutant of auth-core is tested by auth-core's unit and integration tests,
# each mutant of auth-axum by auth-axum's (`--tests`: no doctests, which compile
# one program each and kill nothing the other tests miss). Results land in
# target/mutants/mutants.out (caught.txt, missed.txt, unviable.txt, timeout.txt).
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

start=$(date +%s)
status=0
cargo mutants \
  --file 'auth-core/src/engine/*.rs' \
  --file auth-core/src/token.rs \
  --file auth-core/src/password/policy.rs \
  --file auth-core/src/email.rs \
  --file auth-axum/src/csrf.rs \
  --file auth-axum/src/meta.rs \
  --cargo-test-arg=--tests \
  --minimum-test-timeout 60 \
  --output "$out" \
  "$@" || status=$?
end=$(date +%s)

echo
echo "mutants: $(( (end - start) / 60 )) min $(( (end - start) % 60 )) s"
for outcome in caught missed unviable timeout; do
  file="$out/mutants.out/$outcome.txt"
  printf '%-9s %s\n' "$outcome" "$( [ -f "$file" ] && wc -l <"$file" || echo 0)"
done
# cargo-mutants exits 2 when a mutant was missed, 3 on a timeout: report, then
# pass that on so a caller can tell.
exit "$status"
