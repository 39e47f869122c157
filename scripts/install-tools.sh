#!/usr/bin/env bash
# Installs the third-party Go programs the tests and benchmarks drive, pinned
# to exact versions, into .tools/bin. Each is built once and kept.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/.tools/bin"
mkdir -p "$bin"

# name  package@version
tools=(
  "h2spec github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible"
  "fortio fortio.org/fortio@v1.68.2"
  "interop-client google.golang.org/grpc/interop/client@v1.85.0"
  "interop-server google.golang.org/grpc/interop/server@v1.85.0"
)

for t in "${tools[@]}"; do
  name=${t%% *}
  pkg=${t#* }
  stamp="$bin/.$name.version"
  if [ -x "$bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$pkg" ]; then
    continue
  fi
  echo "install-tools: $name ($pkg)"
  tmp=$(mktemp -d)
  GOBIN="$tmp" go install "$pkg"
  mv "$tmp"/* "$bin/$name"
  rm -rf "$tmp"
  echo "$pkg" > "$stamp"
done
