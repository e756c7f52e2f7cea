#!/usr/bin/env bash
# Prepares the Python agent: a virtualenv with pinned grpcio/grpcio-tools/protobuf (from PyPI),
# and Python stubs generated from proto/baton/v1 into examples/agent-python/gen/. Idempotent and
# quick once done. Prints the venv's python on its last line.
#   examples/agent-python/setup.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
VENV="${BATON_EXAMPLES_VENV:-$ROOT/.baton/venv-examples}"
GEN="$ROOT/examples/agent-python/gen"
PINS=(grpcio==1.68.1 grpcio-tools==1.68.1 protobuf==5.29.3)
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import grpc, grpc_tools, google.protobuf' 2>/dev/null; then
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PINS[@]}" >&2
fi
PROTOS=(proto/baton/v1/run.proto proto/baton/v1/tools.proto proto/baton/v1/agent.proto)
STAMP="$GEN/.stamp"
if [ ! -f "$STAMP" ] || [ -n "$(find "${PROTOS[@]}" -newer "$STAMP" 2>/dev/null)" ]; then
  rm -rf "$GEN" && mkdir -p "$GEN"
  "$VENV/bin/python" -m grpc_tools.protoc -I proto --python_out="$GEN" --grpc_python_out="$GEN" "${PROTOS[@]}" >&2
  touch "$GEN/baton/__init__.py" "$GEN/baton/v1/__init__.py" "$STAMP"
fi
echo "$VENV/bin/python"
