#!/usr/bin/env bash
# CI check: the TypeScript committed in libs/proto/src/gen, the descriptor set
# libs/proto/descriptors.binpb (served by gRPC reflection) and the Python stubs of odin-client
# (clients/python/src/odin_client/_proto) are exactly what proto/ generates.
# Regenerates in place (buf.gen.yaml cleans the output first, so code of a deleted .proto shows up
# as a deletion) and fails when git sees any difference from the committed tree.
set -euo pipefail
cd "$(dirname "$0")/.."

gen="libs/proto/src/gen apps/web/src/gen"
descriptors=libs/proto/descriptors.binpb
python=clients/python/src/odin_client/_proto

# Debian's python3-grpc-tools bundles protoc 3.5.1, which rejects proto3 `optional`; Python clients
# are generated with it, so presence is expressed with google/protobuf/wrappers.proto instead.
if optional=$(grep -rnE '^[[:space:]]*optional[[:space:]]' --include='*.proto' proto); then
  {
    echo "check-codegen: proto3 'optional' breaks Python codegen with Debian's protoc 3.5.1:"
    echo "$optional"
    echo "Fix: use a google.protobuf wrapper (Int64Value, UInt32Value …) or a documented default."
  } >&2
  exit 1
fi

npm run --silent proto:gen

changes=$(git status --porcelain --untracked-files=all -- $gen "$descriptors" "$python")
if [[ -n "$changes" ]]; then
  {
    echo "check-codegen: $gen, $descriptors or $python is out of date with proto/. Changed after regenerating:"
    echo "$changes"
    echo "Fix: run 'npm run proto:gen' and commit $gen, $descriptors and $python together with the .proto change."
  } >&2
  exit 1
fi
echo "check-codegen: $gen, $descriptors and $python match proto/"
