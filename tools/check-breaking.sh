#!/usr/bin/env bash
# CI check: proto/ makes no breaking change (buf.yaml's `breaking` rules) against the last commit of
# main. On a branch that is where the branch left main (its merge base), so the whole branch is
# checked before it lands; on main itself (CI's fresh clone) it is the previous commit, the change
# being landed. Tolerates a first run: no such commit, or no proto/ in it, is a notice, not a failure.
# BASELINE=<commit> compares against another commit.
set -euo pipefail
cd "$(dirname "$0")/.."

notice() { echo "check-breaking: $*"; }

if ! git rev-parse --git-dir >/dev/null 2>&1; then
  notice "not a git checkout; nothing to compare against"
  exit 0
fi

# A shallow clone lacks the parent commit: fetch one more commit when a remote is there.
if [[ "$(git rev-parse --is-shallow-repository)" == "true" ]]; then
  git fetch --quiet --deepen=1 2>/dev/null || true
fi

head=$(git rev-parse HEAD)
baseline=${BASELINE:-}
if [[ -z "$baseline" ]]; then
  main=""
  for ref in main origin/main; do
    if git rev-parse --verify --quiet "$ref^{commit}" >/dev/null; then
      main=$ref
      break
    fi
  done
  if [[ -n "$main" ]]; then baseline=$(git merge-base HEAD "$main" 2>/dev/null || true); fi
  # On main (or behind it) the merge base is HEAD itself: compare with the previous commit.
  if [[ -z "$baseline" || "$baseline" == "$head" ]]; then
    baseline=$(git rev-parse --verify --quiet "HEAD~1^{commit}" || true)
  fi
fi
if [[ -z "$baseline" ]] || ! git cat-file -e "$baseline^{commit}" 2>/dev/null; then
  notice "no earlier commit of main to compare with (first commit or shallow clone); skipped"
  exit 0
fi
short=$(git rev-parse --short "$baseline")
if ! git cat-file -e "$baseline:proto" 2>/dev/null; then
  notice "commit $short has no proto/; nothing to compare (first run)"
  exit 0
fi

# The baseline's proto/ (and its buf.yaml, for the module layout), as files: works in worktrees
# and needs nothing but the commit's objects.
against=$(mktemp -d)
trap 'rm -rf "$against"' EXIT
git archive "$baseline" proto $(git cat-file -e "$baseline:buf.yaml" 2>/dev/null && echo buf.yaml) |
  tar -x -C "$against"
if [[ ! -f "$against/buf.yaml" ]]; then
  printf 'version: v2\nmodules:\n  - path: proto\n' >"$against/buf.yaml"
fi

if ! out=$(npx --no-install buf breaking --against "$against" 2>&1); then
  {
    echo "check-breaking: proto/ breaks the contract of commit $short:"
    echo "$out"
    echo "Fix: add fields instead of changing or renumbering them; to drop a field, delete it and"
    echo "reserve its number and name (reserved 4; reserved \"sequence\";) — see proto/README.md."
  } >&2
  exit 1
fi
notice "proto/ keeps the contract of commit $short"
