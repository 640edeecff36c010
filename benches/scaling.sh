#!/usr/bin/env bash
# How a no-op pass grows: with 2,000, 10,000 and 20,000 processes on the host,
# and 5, 500 and 5,000 services, all running; and 5 services named by
# pidfiles only, whose pass reads just their pids. If any stage were quadratic, ten
# times the processes or the services would cost a hundred times; a linear
# pass costs about ten times at most (and less: part of a pass is fixed).
#
#   bash benches/scaling.sh [RESULTS.md]
#
# The idle processes are `sleep` run through 2,000 symbolic links
# (d0 .. d1999), so their command lines differ; process i runs d(i mod 2000)
# and service k matches d(k mod 2000), so every service has processes at
# every size and a pass restarts nothing. Needs hyperfine (apt-get install
# hyperfine) and about 4 GB of memory for 20,000 sleeps; the kernel's
# pid_max must allow them (32768 on Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh
out=${1:-}

bench_setup tendscale

mkdir -p "$dir/idle"
for i in $(seq 0 1999); do ln -s "$(command -v sleep)" "$dir/idle/d$i"; done
for s in 5 500 5000; do
  for k in $(seq 0 $((s - 1))); do
    printf 'service s%d { process "%s/idle/d%d"; restart "/bin/true" }\n' "$k" "$dir" $((k % 2000))
  done >"$dir/$s.tend"
done
# Five services named by pidfiles only (the shipped policies' way for sshd
# and apache2): a pass reads just their pids, not the whole table.
mkdir -p "$dir/pid"
for k in 0 1 2 3 4; do
  "$dir/idle/d$k" 36000 </dev/null >/dev/null 2>&1 &
  echo $! >"$dir/pid/p$k.pid"
  printf 'service p%d { pidfile "%s/pid/p%d.pid"; restart "/bin/true" }\n' "$k" "$dir" "$k"
done >"$dir/pidfiles.tend"

started=0
rows=()
for n in 2000 10000 20000; do
  while ((started < n)); do
    "$dir/idle/d$((started % 2000))" 36000 </dev/null >/dev/null 2>&1 &
    started=$((started + 1))
  done
  disown -a
  sleep 2
  total=$(ps -e --no-headers | wc -l)
  cmds=()
  for s in 5 500 5000; do
    [ -z "$("$tend" --insecure --state-dir "$dir/state-$s" -f "$dir/$s.tend")" ] \
      || { echo "expected a silent pass ($s services)" >&2; exit 1; }
    cmds+=(-n "$total processes, $s services" "$tend --insecure --state-dir $dir/state-$s -f $dir/$s.tend")
  done
  cmds+=(-n "$total processes, 5 services by pidfile" "$tend --insecure --state-dir $dir/state-p -f $dir/pidfiles.tend")
  cmds+=(-n "$total processes, ps -e -o pid,args" "ps -e -o pid,args")
  hyperfine -N --warmup 2 --min-runs 10 --style basic \
    ${out:+--export-markdown "$dir/$n.md"} "${cmds[@]}"
  for s in 5 500 5000; do
    rss=$(/usr/bin/time -f %M "$tend" --insecure --state-dir "$dir/state-$s" -f "$dir/$s.tend" 2>&1 >/dev/null | tail -1)
    rows+=("| $total | $s | $rss |")
  done
  [ -z "$out" ] || cat "$dir/$n.md" >>"$out"
done
echo
echo "| processes | services | peak RSS (KiB) |"
echo "|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
if [ -n "$out" ]; then
  {
    echo
    echo "| processes | services | peak RSS (KiB) |"
    echo "|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
  } >>"$out"
fi
