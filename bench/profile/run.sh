#!/usr/bin/env bash
# CPU profile of meshproxy (full telemetry) under the benchmark's load:
# GOMAXPROCS=1 on CPU 1, fortio and its echo backend and a telemetry sink on
# CPU 0, RATE requests/s (default 2000; 0 = closed loop) for SECONDS (default
# 20). Prints the hottest functions, where goroutines waited on mutexes and
# channels, and what holds the heap; profiles are kept in
# out/bench/meshproxy.*.pprof.
#
#   bash bench/profile/run.sh [RATE] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rate=${1:-2000} secs=${2:-20}
out=$PWD/out/bench && mkdir -p "$out" bin/bench
fortio=$PWD/.tools/bin/fortio

printf '{"Replace":{"%s":"%s"}}' "$PWD/cmd/meshproxy/zz_pprof.go" "$PWD/bench/profile/pprof.go" >"$out/overlay.json"
go build -tags meshproxy_pprof -overlay "$out/overlay.json" -o bin/bench/meshproxy-pprof ./cmd/meshproxy
go build -o bin/bench/ ./bench/sink

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
be=127.0.0.1:$(port) sink=127.0.0.1:$(port) in=127.0.0.1:$(port) admin=127.0.0.1:$(port) pp=127.0.0.1:$(port)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
taskset -c 0 "$fortio" server -http-port "$be" -grpc-port disabled -redirect-port disabled \
  -tcp-port disabled -udp-port disabled -loglevel Warning -data-dir "$out" >"$out/profile-backend.log" 2>&1 &
pids+=($!)
taskset -c 0 bin/bench/sink -listen "$sink" >"$out/profile-sink.log" 2>&1 &
pids+=($!)
MESHPROXY_PPROF=$pp GOMAXPROCS=1 taskset -c 1 bin/bench/meshproxy-pprof --service bench --inbound "$in" \
  --app "$be" --admin "$admin" --collector "http://$sink" --flush-interval 5s --log-level warn >"$out/profile-meshproxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -sf -o /dev/null "http://$in/echo" && break; sleep 0.2; done

taskset -c 0 "$fortio" load -quiet -qps "$rate" -uniform -c 16 -t "$((secs + 4))s" -payload-size 1024 \
  -r 0.00001 "http://$in/echo" >"$out/profile-load.log" 2>&1 &
load=$!
sleep 2
curl -sf -o "$out/meshproxy.cpu.pprof" "http://$pp/debug/pprof/profile?seconds=$secs"
wait "$load"
curl -sf -o "$out/meshproxy.mutex.pprof" "http://$pp/debug/pprof/mutex"
curl -sf -o "$out/meshproxy.block.pprof" "http://$pp/debug/pprof/block"
curl -sf -o "$out/meshproxy.heap.pprof" "http://$pp/debug/pprof/heap"
grep -E '^Vm(HWM|RSS)' "/proc/${pids[2]}/status"
grep -E '^All done|target 99%' "$out/profile-load.log"
go tool pprof -top -nodecount=35 bin/bench/meshproxy-pprof "$out/meshproxy.cpu.pprof" 2>/dev/null | head -45
echo "--- cumulative"
go tool pprof -top -cum -nodecount=45 bin/bench/meshproxy-pprof "$out/meshproxy.cpu.pprof" 2>/dev/null | sed -n '6,55p'
echo "--- mutex contention"
go tool pprof -top -cum -nodecount=25 bin/bench/meshproxy-pprof "$out/meshproxy.mutex.pprof" 2>/dev/null | sed -n '5,35p'
echo "--- blocking (channels, select, sync)"
go tool pprof -top -cum -nodecount=25 bin/bench/meshproxy-pprof "$out/meshproxy.block.pprof" 2>/dev/null | sed -n '5,35p'
echo "--- heap in use"
go tool pprof -top -sample_index=inuse_space -nodecount=20 bin/bench/meshproxy-pprof "$out/meshproxy.heap.pprof" 2>/dev/null | sed -n '5,28p'
