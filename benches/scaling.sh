#!/usr/bin/env bash
# How a no-op pass grows: with 2,000, 10,000 and 20,000 processes on the host,
# and 5, 500 and 5,000 services, all running; and 5 services named by
# pidfiles only, whose pass reads just their pids. If any stage were quadratic, ten
# times the processes or the services would cost a hundred times; a linear
# pass costs about ten times at most (and less: part of a pass is fixed).
#
# At each size the same five services are also checked by the reference
# scanner, cf-agent and monit (when installed), and ps reads the table; 500
# services at paths with an unescaped `.` show what a regular expression
# costs. With RESULTS.md, the times are also drawn, against processes, in
# RESULTS.png (gnuplot, installed from Debian when missing).
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
rustc -O -o "$dir/reference" benches/reference.rs
for pkg in cf-agent:cfengine3 monit:monit ${out:+gnuplot:gnuplot-nox}; do
  command -v "${pkg%%:*}" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkg#*:}" >/dev/null 2>&1 \
    || echo "note: could not install ${pkg#*:}; it is left out" >&2
done

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
# 500 services at paths with a dot, unescaped: `idle.d42` is a regular
# expression (its `.` matches the `/` of idle/d42).
for k in $(seq 0 499); do
  printf 'service s%d { process "%s/idle.d%d"; restart "/bin/true" }\n' "$k" "$dir" "$k"
done >"$dir/dotted.tend"
# The five services for the peers.
five=()
for k in 0 1 2 3 4; do five+=(s$k="$dir/idle/d$k"); done
command -v cf-agent >/dev/null && cf_any "$dir/five.cf" "${five[@]}"
command -v monit >/dev/null && monitrc "$dir/five.monitrc" /bin/true "${five[@]}"

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
  cmds+=(-n "$total processes, 500 services, dotted" "$tend --insecure --state-dir $dir/state-d -f $dir/dotted.tend")
  cmds+=(-n "$total processes, 5 services by pidfile" "$tend --insecure --state-dir $dir/state-p -f $dir/pidfiles.tend")
  cmds+=(-n "$total processes, ps -e -o pid,args" "ps -e -o pid,args")
  cmds+=(-n "$total processes, reference, 5 literals" "$dir/reference ${five[*]#*=}")
  hyperfine -N --warmup 2 --min-runs 10 --style basic \
    --export-json "$dir/$n.json" ${out:+--export-markdown "$dir/$n.md"} "${cmds[@]}"
  # The peers take seconds at these sizes: fewer runs.
  peers=()
  command -v cf-agent >/dev/null && peers+=(-n "$total processes, cf-agent, 5 services" "cf-agent -K -f $dir/five.cf")
  command -v monit >/dev/null && peers+=(-n "$total processes, monit, 5 services" "monit -c $dir/five.monitrc validate")
  if [ ${#peers[@]} -gt 0 ]; then
    hyperfine -N -i --warmup 1 --runs 3 --style basic \
      --export-json "$dir/$n-peers.json" ${out:+--export-markdown "$dir/$n-peers.md"} "${peers[@]}"
    [ -z "$out" ] || cat "$dir/$n-peers.md" >>"$dir/$n.md"
  fi
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
# One row per size: processes, then each command's mean in ms.
python3 - "$dir" 2000 10000 20000 >"$dir/curve.dat" <<'PY'
import json, os, re, sys
d, sizes = sys.argv[1], sys.argv[2:]
names = ["5 services", "500 services", "5000 services", "500 services, dotted",
         "5 services by pidfile", "ps -e -o pid,args", "reference, 5 literals",
         "cf-agent, 5 services", "monit, 5 services"]
print("# processes " + " | ".join(names))
for n in sizes:
    means, total = {}, None
    for f in (f"{d}/{n}.json", f"{d}/{n}-peers.json"):
        if os.path.exists(f):
            for r in json.load(open(f))["results"]:
                m = re.match(r"(\d+) processes, (.*)", r["command"])
                total, means[m.group(2)] = m.group(1), r["mean"] * 1000
    print(total, " ".join(f"{means[k]:.2f}" if k in means else "NaN" for k in names))
PY
cat "$dir/curve.dat"
if [ -n "$out" ] && command -v gnuplot >/dev/null; then
  gnuplot <<EOF
set terminal pngcairo size 900,560 font "sans,10"
set output "${out%.md}.png"
set title "A pass against the size of the process table (one machine, one run per size)"
set xlabel "processes on the host"
set ylabel "time of one pass or scan (ms, log scale)"
set logscale y
set key outside right
set grid
array t[9] = ["tend, 5 services", "tend, 500", "tend, 5,000", "tend, 500 dotted", "tend, 5 by pidfile", "ps -e -o pid,args", "reference scanner, 5", "cf-agent, 5", "monit, 5"]
array c[9] = ["#1b9e77", "#66a61e", "#2c7fb8", "#e6ab02", "#a6761d", "#7570b3", "#e7298a", "#d95f02", "#666666"]
# tend's lines solid and thick, the others dashed.
plot for [i=2:6] "$dir/curve.dat" using 1:i with linespoints title t[i-1] lc rgb c[i-1] lw 2 dt 1 pt 7 ps 0.8, \
  for [i=7:10] "$dir/curve.dat" using 1:i with linespoints title t[i-1] lc rgb c[i-1] lw 1 dt 2 pt 7 ps 0.8
EOF
  echo "plot: ${out%.md}.png"
fi
if [ -n "$out" ]; then
  {
    echo
    echo "| processes | services | peak RSS (KiB) |"
    echo "|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
  } >>"$out"
fi
