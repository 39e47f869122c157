#!/usr/bin/env bash
# Installs the third-party Go programs the tests and benchmarks drive, pinned
# to exact versions, into .tools/bin. Each is built once and kept: a stamp file
# .tools/bin/.NAME.version records what was built, so a second run prints
# nothing and takes well under a second. Builds are also kept per machine in
# $MESHLENS_TOOLS_CACHE (default ~/.cache/meshlens-tools), so a fresh clone
# on the same machine copies them instead of building. Each new build is
# checked to run.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/.tools/bin"
cache="${MESHLENS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/meshlens-tools}"
mkdir -p "$bin" "$cache"

# The gRPC interop programs are built at the grpc version our module uses.
grpc=$(awk '$1 == "google.golang.org/grpc" { print $2; exit }' go.mod)
[ -n "$grpc" ] || { echo "install-tools: google.golang.org/grpc not in go.mod" >&2; exit 1; }

# name  package@version  smoke-test arguments (must exit 0)
# telemetrygen: v0.161.0 is the newest release the module proxy serves
# (v0.162.0 and later, including v0.165.0 to match our collector, are not).
# h2spec: v2.2.1 is the newest tag the module proxy serves for its module path.
tools=(
  "h2spec github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible --version"
  "fortio fortio.org/fortio@v1.68.2 version"
  "interop-client google.golang.org/grpc/interop/client@$grpc --help"
  "interop-server google.golang.org/grpc/interop/server@$grpc --help"
  "telemetrygen github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@v0.161.0 --help"
  "toxiproxy-server github.com/Shopify/toxiproxy/v2/cmd/server@v2.5.0 -version"
  "toxiproxy-cli github.com/Shopify/toxiproxy/v2/cmd/cli@v2.5.0 --version"
)

for t in "${tools[@]}"; do
  read -r name pkg check <<<"$t"
  stamp="$bin/.$name.version"
  if [ -x "$bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$pkg" ]; then
    continue
  fi
  cached="$cache/${pkg//[\/@+]/_}"
  if [ ! -x "$cached" ]; then
    echo "install-tools: $name ($pkg)"
    tmp=$(mktemp -d)
    # Outside our module, so go install resolves the tool's own go.mod.
    (cd "$tmp" && GOBIN="$tmp/bin" GOFLAGS=-buildvcs=false go install "$pkg")
    mv "$tmp"/bin/* "$cached"
    rm -rf "$tmp"
  fi
  cp "$cached" "$bin/$name"
  if ! out=$("$bin/$name" $check 2>&1); then
    echo "install-tools: $name $check failed: $out" >&2
    rm -f "$cached" "$bin/$name"
    exit 1
  fi
  echo "$pkg" >"$stamp"
done
