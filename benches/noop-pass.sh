#!/usr/bin/env bash
# Whole-process benchmark of a no-op pass, against `ps -e -o pid,args` over the
# same process table. Needs hyperfine (apt-get install hyperfine).
#
#   bash benches/noop-pass.sh [RESULTS.md]
#
# It starts 2,000 extra idle processes (500 copies of sleep, 4 each) and times:
#   - ps -e -o pid,args                   the floor: read every command line
#   - tend, 5 services, all running       a real pass; prints nothing
#   - tend, 500 services, all running     plain paths (the literal matcher)
#   - the same with --metrics              and the Prometheus textfile written
#   - tend, 500 regex services, running   `^/path` patterns (the RegexSet)
#   - tend --dry-run, 500, none match     every pattern fails on every process;
#                                         --dry-run so nothing is restarted
# If matching cost grew as services x processes, 500 services would cost ~100x
# what 5 do; it should cost about the same as ps.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh
out=${1:-}

bench_setup tendbench

for i in $(seq 0 499); do cp /bin/sleep "$dir/d$i"; done
for i in $(seq 0 499); do
  for _ in 1 2 3 4; do "$dir/d$i" 3600 </dev/null >/dev/null 2>&1 & done
done
disown -a
sleep 1
echo "processes on this host: $(ps -e --no-headers | wc -l)"

policy() { # policy FILE COUNT PREFIX [ANCHOR]
  for i in $(seq 0 $(($2 - 1))); do
    printf 'service s%d {\n  process "%s%s/%s%d"\n  restart "true"\n}\n' "$i" "${4:-}" "$dir" "$3" "$i"
  done >"$1"
}
policy "$dir/running-5.tend" 5 d
policy "$dir/running-500.tend" 500 d
policy "$dir/regex-500.tend" 500 d '^'
policy "$dir/none-500.tend" 500 missing

for p in running-500 regex-500; do
  [ -z "$("$tend" --state-dir "$dir/state" -f "$dir/$p.tend")" ] || { echo "expected a silent pass for $p" >&2; exit 1; }
done

hyperfine -N --warmup 3 --min-runs 20 ${out:+--export-markdown "$out"} \
  --command-name 'ps -e -o pid,args' "ps -e -o pid,args" \
  --command-name 'tend: 5 services, all running' "$tend --state-dir $dir/state -f $dir/running-5.tend" \
  --command-name 'tend: 500 services, all running' "$tend --state-dir $dir/state -f $dir/running-500.tend" \
  --command-name 'tend --metrics: 500 services, all running' "$tend --state-dir $dir/state -f $dir/running-500.tend --metrics $dir/tend.prom" \
  --command-name 'tend: 500 regex services, all running' "$tend --state-dir $dir/state -f $dir/regex-500.tend" \
  -i --command-name 'tend --dry-run: 500 services, none match' "$tend --state-dir $dir/state --dry-run -f $dir/none-500.tend"
