#!/usr/bin/env bash
# A dot in a path costs nothing: 500 services whose `process` paths have a
# dot each, as admins write them (`/usr/sbin/php-fpm8.2`: a regular
# expression, since `.` matches any character), beside the same policy with
# the dots escaped (`php-fpm8\.2`: plain text), and with anchors and dots
# (`^/.../php-fpm8.2`), over 2,000 idle processes, all running, in one
# hyperfine run. Then 5,000 such services over 10,000 processes, to compare
# the cost per (process + service) with 500 over 2,000.
#
#   bash benches/dotted.sh [RESULTS.md]
#
# Needs hyperfine (apt-get install hyperfine) and about 2 GB of memory for
# 10,000 sleeps.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh
out=${1:-}

bench_setup tenddots

mkdir -p "$dir/idle"
for i in $(seq 0 1999); do ln -s "$(command -v sleep)" "$dir/idle/php-fpm$i.2"; done
policy() { # services, form
  for k in $(seq 0 $(($1 - 1))); do
    local path="$dir/idle/php-fpm$((k % 2000))"
    case $2 in
      dotted) printf 'service s%d { process "%s.2"; restart "/bin/true" }\n' "$k" "$path" ;;
      escaped) printf 'service s%d { process "%s\\\\.2"; restart "/bin/true" }\n' "$k" "$path" ;;
      anchored) printf 'service s%d { process "^%s.2"; restart "/bin/true" }\n' "$k" "$path" ;;
    esac
  done
}
for form in dotted escaped anchored; do
  policy 500 "$form" >"$dir/500-$form.tend"
done
policy 5000 dotted >"$dir/5000-dotted.tend"

started=0
start_to() {
  while ((started < $1)); do
    "$dir/idle/php-fpm$((started % 2000)).2" 36000 </dev/null >/dev/null 2>&1 &
    started=$((started + 1))
  done
  disown -a
  sleep 2
}
pass() { echo "$tend --insecure --state-dir $dir/state-$1 -f $dir/$1.tend"; }
silent() {
  [ -z "$("$tend" --insecure --state-dir "$dir/state-$1" -f "$dir/$1.tend")" ] \
    || { echo "expected a silent pass ($1)" >&2; exit 1; }
}

start_to 2000
total=$(ps -e --no-headers | wc -l)
for p in 500-dotted 500-escaped 500-anchored 5000-dotted; do silent "$p"; done
hyperfine -N --warmup 3 --min-runs 20 --style basic \
  ${out:+--export-markdown "$dir/2000.md"} \
  -n "$total processes, 500 services, dots escaped" "$(pass 500-escaped)" \
  -n "$total processes, 500 services, dotted" "$(pass 500-dotted)" \
  -n "$total processes, 500 services, anchored and dotted" "$(pass 500-anchored)"
small=$(hyperfine -N --warmup 3 --min-runs 20 --style none --export-json /dev/stdout "$(pass 500-dotted)" | sed -n 's/.*"median": \([0-9.]*\).*/\1/p' | head -1)

start_to 10000
total_big=$(ps -e --no-headers | wc -l)
silent 5000-dotted
big=$(hyperfine -N --warmup 2 --min-runs 10 --style basic --export-json "$dir/big.json" \
  -n "$total_big processes, 5000 services, dotted" "$(pass 5000-dotted)" >&2; sed -n 's/.*"median": \([0-9.]*\).*/\1/p' "$dir/big.json" | head -1)
ratio=$(awk -v s="$small" -v b="$big" -v n="$total" -v m="$total_big" \
  'BEGIN { printf "%.2f", (b / (m + 5000)) / (s / (n + 500)) }')
echo "cost per (process + service): $total_big + 5000 against $total + 500: ${ratio}x"
[ -z "$out" ] || { cat "$dir/2000.md"; echo; echo "5,000 dotted services over $total_big processes: the cost per (process + service) is ${ratio}x that of 500 over $total."; } >>"$out"
