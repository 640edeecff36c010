#!/usr/bin/env bash
# Writes benches/hot.order: the functions a pass runs, which build.rs hands
# to the linker (lld's --symbol-ordering-file) so that a release build puts
# them side by side at the start of .text. A pass runs about 850 KB of the
# binary's 3.7 MB of code, spread all over it; the kernel maps 64 KiB around
# every page touched, so without the order nearly all of .text is resident
# (peak RSS about 6 MiB), with it about 1 MB is (under 4 MiB). See
# docs/performance.md.
#
#   bash benches/hot-order.sh
#
# Then `cargo build --release` again. Run it after a dependency or toolchain
# update: the names carry hashes that change with them (a name not in the
# binary is ignored, so a stale order costs memory, never correctness).
# Needs valgrind (apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh
command -v valgrind >/dev/null || { echo "needs valgrind: apt-get install valgrind" >&2; exit 2; }

bench_setup tendhot

# The seed's four daemons (apache down for the first profile), one at a
# path with a dot, and 2,000 idle processes, as in peers.sh.
mkdir -p "$dir/usr/sbin" "$dir/idle"
for d in sshd slapd named apache2 php-fpm8.2; do cp /bin/sleep "$dir/usr/sbin/$d"; done
for d in sshd slapd named php-fpm8.2; do "$dir/usr/sbin/$d" 3600 </dev/null >/dev/null 2>&1 & echo $! >"$dir/$d.pid"; done
for i in $(seq 0 499); do ln -s "$(command -v sleep)" "$dir/idle/d$i"; done
for i in $(seq 0 1999); do "$dir/idle/d$((i % 500))" 3600 </dev/null >/dev/null 2>&1 & done
disown -a
sleep 1
cat >"$dir/services.tend" <<EOF
any::
  service ssh { name "OpenSSH"; process "$dir/usr/sbin/sshd"; pidfile "$dir/sshd.pid"; restart "/bin/true" }
web|dns::
  service ldap { name "OpenLDAP"; process "$dir/usr/sbin/slapd"; restart "/bin/true" }
  service bind { name "BIND"; process "$dir/usr/sbin/named"; restart "/bin/true" }
  # A path with a dot: a regular expression, shaped (peers.sh's dotted case).
  service fpm { name "PHP-FPM"; process "$dir/usr/sbin/php-fpm8.2"; restart "/bin/true" }
web::
  service apache { name "Apache"; process "$dir/usr/sbin/apache2"; restart "sh -c '$dir/usr/sbin/apache2 3600 </dev/null >/dev/null 2>&1 &'"; grace 5s }
EOF
# Each pass under callgrind: the functions it entered, by their symbol names.
profile() { # profile NAME ARGS...
  local name=$1
  shift
  valgrind -q --tool=callgrind --demangle=no --dump-instr=no --compress-strings=no \
    --callgrind-out-file="$dir/$name.cg" "$tend" --insecure -D web --pkg-root "$dir" \
    --state-dir "$dir/state" -f "$dir/services.tend" "$@" >/dev/null 2>&1 || true
  grep -E '^c?fn=' "$dir/$name.cg" | sed -E 's/^c?fn=//' | awk '!seen[$0]++'
}
# First pass: apache is down and restarted (the restart path, the first
# state); second: a pass that changes nothing (the path every five minutes).
profile restart >"$dir/restart.fns"
profile noop >"$dir/noop.fns"
# The binary's own functions only (not libc's), the no-op pass's first.
nm --defined-only "$tend" | awk '$2 ~ /^[tT]$/ {print $3}' | sort -u >"$dir/defined"
cat "$dir/noop.fns" "$dir/restart.fns" | awk '!seen[$0]++' \
  | grep -Fx -f "$dir/defined" >benches/hot.order
echo "benches/hot.order: $(wc -l <benches/hot.order) functions"
