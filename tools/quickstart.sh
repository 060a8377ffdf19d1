#!/usr/bin/env bash
# Quick start: installs Odin, starts it in embedded mode (one process, no cluster), runs the
# example diamond pipeline end to end and shows its result, its logs and the web UI's address (and,
# in a terminal, keeps the server running until Ctrl-C so the run can be looked at in a browser).
#   bash tools/quickstart.sh              (what `npm run quickstart` runs)
#   bash tools/quickstart.sh --no-install (skip npm ci and the build, e.g. in tests)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" != "--no-install" ]]; then
  if ! command -v git >/dev/null; then
    if [[ $(id -u) -eq 0 ]]; then
      echo "quickstart: installing git (Odin keeps pipelines in a git repository)"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git >/dev/null
    else
      echo "quickstart: Odin needs git; install it (sudo apt-get install -y git) and run this again" >&2
      exit 1
    fi
  fi
  echo "quickstart: installing dependencies (npm ci) and building"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  npx nx run-many -t build --output-style=static >/dev/null
fi

odin() { node apps/cli/bin/odin.js "$@"; }
work=$(mktemp -d)
log="$work/server.log"
cleanup() {
  if [[ -n "${server:-}" ]]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

node apps/cli/bin/odin.js server --port 0 --http-port 0 --data "$work/data" >"$log" 2>&1 &
server=$!
for _ in $(seq 1 600); do # up to a minute on a busy machine
  grep -q "listening on" "$log" && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
grep -q "listening on" "$log" || { echo "quickstart: odin server did not start in a minute:" >&2; cat "$log" >&2; exit 1; }
export ODIN_SERVER=$(grep -o "listening on [^ ]*" "$log" | awk '{print $3}')
sed -n '/listening on/,$p' "$log" | grep -v '^try:'
echo
echo "\$ odin ls"
odin ls
echo
echo "\$ odin run diamond --follow"
status=0
odin run diamond --follow | tee "$work/run.txt" || status=$?
run=$(awk '/^run /{print $2; exit}' "$work/run.txt" | tr -d ':')
echo
echo "\$ odin logs $run"
odin logs "$run"
web=$(grep -o "web UI and HTTP/JSON API: [^ ]*" "$log" | awk '{print $NF}')
echo
echo "web UI: ${web}runs/$run"
if [[ -t 0 && -t 1 ]]; then
  echo "the server keeps running so you can look around; press Ctrl-C to stop it"
  wait "$server" || true
fi
exit $status
