#!/usr/bin/env bash
# bench/collector/run.sh — CPU of the meshlens collector (embedded default
# config, PostgreSQL store) against a stock OpenTelemetry Collector of the
# same release (otlp receiver, batch processor, nop exporter: stockcol/), at
# the same load: OTLP/gRPC requests of 100 spans (traces of 10) at RATE
# spans/s for SECS seconds, from load/ (telemetrygen cannot keep up with
# 10,000 spans/s on a busy 2-core machine; see load/main.go). Both
# collectors run side by side, each loaded by its own generator in the same
# window: on this shared machine the CPU time of the same work moves by ±30%
# from minute to minute (other tenants), and measured at once both see the
# same machine. Each collector's CPU-seconds come from /proc/PID/stat
# (utime+stime) from the start of the load to 3 s after it ends (the store
# writes that follow the load count); both are started fresh every round.
# Prints each round, the median ratio, and the target (≤ 1.2×).
#
#   bench/collector/run.sh            # ROUNDS=3 SECS=20 RATE=10000
#   ROUNDS=5 SECS=30 bench/collector/run.sh
#
# VARIANT runs a third collector beside them, for comparing a change with
# the default build in the same rounds: a command the script appends the
# same flags to, e.g. VARIANT="/tmp/meshlens-old collector" or
# VARIANT="bin/meshlens collector --set exporters::meshlens_store::sending_queue::num_consumers=1".
# Each round then also prints the variant's CPU and its ratio to meshlens.
# A round's ratio moves by about ±0.1 on a shared 2-core machine: compare
# over 5 rounds or more.
#
# PERF=1 also profiles every collector with `perf record -e cpu-clock -g`
# (Debian's linux-perf) from 3 s into the load to 2 s before its end, and
# prints each round's samples sorted into the parts of a collector's work
# (bench/collector/perfcat.py). Sample counts of one window tell parts
# apart far more finely than the CPU-seconds of a round do. PERFDIR=DIR
# keeps the last round's profiles there (perf-NAME.data).
#
# Builds bin/meshlens, and needs PostgreSQL (MESHLENS_BENCH_DATABASE_URL, or
# 127.0.0.1:5432, where it creates and drops a database of its own).
set -euo pipefail
ROUNDS=${ROUNDS:-3}
VARIANT=${VARIANT:-}
PERF=${PERF:-}
SECS=${SECS:-20}
RATE=${RATE:-10000}
cd "$(git rev-parse --show-toplevel)"
if [ -n "$PERF" ] && ! command -v perf >/dev/null; then
	echo "PERF=1 needs perf (Debian package linux-perf)" >&2
	exit 1
fi
GO=${GO:-go}
mkdir -p bin/bench
$GO build -o bin/bench/ ./bench/collector/stockcol ./bench/collector/load
$GO build -o bin/meshlens ./cmd/meshlens # always: a stale binary would be measured otherwise

work=$(mktemp -d)
db=""
pids=()
cleanup() {
	for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -n "$db" ] && psql -q "postgres://127.0.0.1:5432/test?sslmode=disable" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

if [ -n "${MESHLENS_BENCH_DATABASE_URL:-}" ]; then
	DBURL=$MESHLENS_BENCH_DATABASE_URL
else
	db=meshlens_bench_$$
	psql -q "postgres://127.0.0.1:5432/test?sslmode=disable" -c "CREATE DATABASE $db" >/dev/null
	DBURL="postgres://127.0.0.1:5432/$db?sslmode=disable"
fi
bin/meshlens migrate up --database-url "$DBURL" >/dev/null

TCK=$(getconf CLK_TCK)
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
waitport() {
	for _ in $(seq 300); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "nothing listens on 127.0.0.1:$1" >&2
	return 1
}

# start NAME: starts that collector; sets PID[NAME] and GRPC[NAME].
declare -A PID=() GRPC=()
start() {
	local name=$1 grpc
	grpc=$(port)
	if [ "$name" = stock ]; then
		STOCK_GRPC=127.0.0.1:$grpc bin/bench/stockcol --config bench/collector/stock.yaml >"$work/$name.log" 2>&1 &
	else
		local cmd="bin/meshlens collector"
		[ "$name" = variant ] && cmd=$VARIANT
		# $cmd is a command and its arguments: split on purpose.
		# shellcheck disable=SC2086
		$cmd --data-dir "$work/data-$RANDOM" --database-url "$DBURL" \
			--set receivers::otlp::protocols::grpc::endpoint=127.0.0.1:$grpc \
			--set receivers::meshlens_hdr::endpoint=127.0.0.1:$(port) \
			--set extensions::meshlens::metrics::endpoint=127.0.0.1:$(port) \
			--set extensions::meshlens::api::endpoint=127.0.0.1:$(port) \
			--set service::telemetry::logs::level=warn >"$work/$name.log" 2>&1 &
	fi
	PID[$name]=$!
	GRPC[$name]=$grpc
	pids+=("$!")
	waitport "$grpc"
}

names="stock meshlens"
[ -n "$VARIANT" ] && names="$names variant"
echo "collector CPU at $RATE spans/s each (100 spans a batch, OTLP/gRPC), side by side ($names), ${SECS}s of load + 3s, $ROUNDS rounds, $(nproc) cores"
ratios=()
for r in $(seq "$ROUNDS"); do
	for n in $names; do start "$n"; done
	sleep 2 # settle after start
	declare -A before=()
	for n in $names; do before[$n]=$(cpu "${PID[$n]}"); done
	# Both loads run at once, so whatever else the machine does in this
	# window weighs on both collectors alike.
	loads=()
	for n in $names; do
		bin/bench/load -endpoint "127.0.0.1:${GRPC[$n]}" -rate "$RATE" -batch 100 -duration "${SECS}s" \
			-service "bench-$n" >>"$work/load-$n.log" 2>&1 &
		loads+=("$!")
	done
	perfs=()
	if [ -n "$PERF" ]; then
		sleep 3
		for n in $names; do
			perf record -q -e cpu-clock -F 2000 -g -p "${PID[$n]}" -o "${PERFDIR:-$work}/perf-$n.data" -- sleep $((SECS > 6 ? SECS - 5 : 1)) >/dev/null 2>&1 &
			perfs+=("$!")
		done
	fi
	for l in "${loads[@]}"; do wait "$l" || { cat "$work"/load-*.log >&2; exit 1; }; done
	for p in "${perfs[@]:-}"; do [ -n "$p" ] && wait "$p"; done
	sleep 3
	declare -A c=()
	for n in $names; do
		c[$n]=$(awk -v a="$(cpu "${PID[$n]}")" -v b="${before[$n]}" -v t="$TCK" 'BEGIN{printf "%.2f", (a-b)/t}')
		kill "${PID[$n]}"
		wait "${PID[$n]}" 2>/dev/null || true
	done
	ratio=$(awk -v m="${c[meshlens]}" -v s="${c[stock]}" 'BEGIN{printf "%.2f", m/s}')
	ratios+=("$ratio")
	printf "round %d: stock %s CPU-s, meshlens %s CPU-s, ratio %s×" "$r" "${c[stock]}" "${c[meshlens]}" "$ratio"
	if [ -n "$VARIANT" ]; then
		awk -v v="${c[variant]}" -v s="${c[stock]}" -v m="${c[meshlens]}" \
			'BEGIN{printf "; variant %.2f CPU-s, %.2f× stock, %.2f× meshlens", v, v/s, v/m}'
	fi
	echo
	if [ -n "$PERF" ]; then
		args=()
		for n in $names; do args+=("$n=${PERFDIR:-$work}/perf-$n.data"); done
		python3 bench/collector/perfcat.py "${args[@]}"
	fi
	unset c before
done
stored=$(psql -tA "$DBURL" -c "SELECT count(*) FROM spans WHERE service = 'bench-meshlens'")
expect=$((RATE * SECS * ROUNDS))
median=$(printf "%s\n" "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}')
for n in $names; do
	grep '^load:' "$work/load-$n.log" | sed "s/^load:/  load ($n):/"
done
echo "meshlens stored $stored spans of $expect sent"
echo "median ratio ${median}× (target ≤ 1.2×)"
