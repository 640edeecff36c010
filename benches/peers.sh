#!/usr/bin/env bash
# tend beside its peers, on the seed's own job: the four services of the
# CFEngine recipe tend was born from (ssh everywhere, ldap and bind on web and
# dns hosts, apache on web hosts), on a `web` host with 2,000 other idle
# processes (and the same with 500 services). Times, in one hyperfine run:
#   - tend                         a pass, all four running (prints nothing)
#   - cf-agent -K -D web           the seed's own policy, paths adapted
#   - monit validate               one monit cycle, `check process ... matching`
#   - ps -e -o pid,args            reading every command line
#   - reference                    benches/reference.rs: the least this job
#                                  needs (cmdline and exe of every process)
# and, in the same run, two shapes real policies have:
#   - dotted paths                 four daemons at paths with dots
#                                  (php-fpm8.2, python3.11, server.js,
#                                  postgres -D .../pg.d), unescaped, as
#                                  regular expressions, for tend, cf-agent
#                                  and monit alike
#   - by pidfile                   the seed's four by their pidfiles only
#                                  (tend, and monit's `with pidfile`)
# then the peak RSS of each, and the failure path: one service whose restart
# command fails, once with each tool.
#
#   bash benches/peers.sh [RESULTS.md]
#
# Installs cfengine3, monit and hyperfine from Debian when missing; skips a
# peer that cannot be installed, saying so. As root (cf-agent and monit want
# their own state directories).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh
out=${1:-}
for pkg in hyperfine:hyperfine cf-agent:cfengine3 monit:monit; do
  command -v "${pkg%%:*}" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkg#*:}" >/dev/null 2>&1 \
    || echo "note: could not install ${pkg#*:}; it is left out" >&2
done

bench_setup tendpeers
rustc -O -o "$dir/reference" benches/reference.rs

# The seed's four daemons at the seed's paths under $dir, and 2,000 others.
mkdir -p "$dir/usr/sbin" "$dir/idle"
mkdir -p "$dir/pid"
for d in sshd slapd named apache2; do
  cp /bin/sleep "$dir/usr/sbin/$d"; "$dir/usr/sbin/$d" 3600 </dev/null >/dev/null 2>&1 &
  echo $! >"$dir/pid/$d.pid"
done
# Daemons at paths as admins find them, with dots (the pattern's `.` is a
# regular expression's; each matches its own daemon only).
dotted=(fpm="$dir/usr/sbin/php-fpm8.2" py="$dir/usr/bin/python3.11 $dir/srv/app.py"
        node="$dir/opt/app/server.js" pg="$dir/usr/lib/postgresql/15/bin/postgres -D $dir/var/lib/pg.d")
mkdir -p "$dir/usr/bin" "$dir/opt/app" "$dir/usr/lib/postgresql/15/bin"
for d in "${dotted[@]}"; do
  bin=${d#*=}; bin=${bin%% *}
  cp /bin/sleep "$bin"
  # Its command line as ps shows it: argv[0] with the arguments, then 3600.
  (exec -a "${d#*=}" "$bin" 3600 </dev/null >/dev/null 2>&1) &
done
for i in $(seq 0 499); do cp /bin/sleep "$dir/idle/d$i"; done
for i in $(seq 0 499); do for _ in 1 2 3 4; do "$dir/idle/d$i" 3600 </dev/null >/dev/null 2>&1 & done; done
disown -a
sleep 1
echo "processes on this host: $(ps -e --no-headers | wc -l)"

# tend: the seed's services.
cat >"$dir/services.tend" <<EOF
any::
  service ssh { name "OpenSSH"; process "$dir/usr/sbin/sshd"; restart "/bin/true" }
web|dns::
  service ldap { name "OpenLDAP"; process "$dir/usr/sbin/slapd"; restart "/bin/true" }
  service bind { name "BIND"; process "$dir/usr/sbin/named"; restart "/bin/true" }
web::
  service apache { name "Apache"; process "$dir/usr/sbin/apache2"; restart "/bin/true" }
EOF
tend_cmd="$tend --insecure -D web --state-dir $dir/tend-state -f $dir/services.tend"
[ -z "$($tend_cmd)" ] || { echo "expected a silent tend pass" >&2; exit 1; }
for d in "${dotted[@]}"; do
  printf 'service %s { process "%s"; restart "/bin/true" }\n' "${d%%=*}" "${d#*=}"
done >"$dir/dotted.tend"
for d in sshd slapd named apache2; do
  printf 'service %s { pidfile "%s/pid/%s.pid"; restart "/bin/true" }\n' "$d" "$dir" "$d"
done >"$dir/pidfile.tend"
for set in dotted pidfile; do
  [ -z "$($tend --insecure --state-dir "$dir/tend-$set" -f "$dir/$set.tend")" ] \
    || { echo "expected a silent tend pass ($set)" >&2; exit 1; }
done

# CFEngine: the seed's policy, its paths under $dir, with today's stdlib.
cf() { # cf FILE RESTART
  local lib=/var/lib/cfengine3/masterfiles/lib/stdlib.cf
  cat >"$1" <<EOF
body common control { bundlesequence => { "services" }; inputs => { "$lib" }; }
bundle agent services {
vars:
  any::
    "services[ssh][name]" string => "OpenSSH";
    "services[ssh][process]" string => "$dir/usr/sbin/sshd";
    "services[ssh][restart]" string => "$2";
  web|dns::
    "services[ldap][name]" string => "OpenLDAP";
    "services[ldap][process]" string => "$dir/usr/sbin/slapd";
    "services[ldap][restart]" string => "$2";
    "services[bind][name]" string => "BIND";
    "services[bind][process]" string => "$dir/usr/sbin/named";
    "services[bind][restart]" string => "$2";
  web::
    "services[apache][name]" string => "Apache";
    "services[apache][process]" string => "$dir/usr/sbin/apache2";
    "services[apache][restart]" string => "$2";
  any::
    "services" slist => getindices("services");
processes:
  "\$(services[\$(services)][process])" restart_class => "service_\$(services)_restart";
commands:
  "\$(services[\$(services)][restart])" classes => if_notkept("service_\$(services)_failed"), ifvarclass => "service_\$(services)_restart";
reports:
  "\$(services[\$(services)][name]) is not running, restarting..." ifvarclass => "service_\$(services)_restart";
  "\$(services[\$(services)][name]) failed to start!" ifvarclass => "service_\$(services)_failed";
}
EOF
  chmod 600 "$1"
}
seed=(sshd="$dir/usr/sbin/sshd" slapd="$dir/usr/sbin/slapd" named="$dir/usr/sbin/named" apache2="$dir/usr/sbin/apache2")

cmds=(-n "tend" "$tend_cmd")
if command -v cf-agent >/dev/null; then
  cf "$dir/services.cf" /bin/true
  cmds+=(-n "cf-agent -K -D web" "cf-agent -K -D web -f $dir/services.cf")
fi
if command -v monit >/dev/null; then
  monitrc "$dir/monitrc" /bin/true "${seed[@]}"
  cmds+=(-n "monit validate" "monit -c $dir/monitrc validate")
fi
cmds+=(-n "ps -e -o pid,args" "ps -e -o pid,args")
cmds+=(-n "reference" "$dir/reference $dir/usr/sbin/sshd $dir/usr/sbin/slapd $dir/usr/sbin/named $dir/usr/sbin/apache2")
# 500 services: the idle daemons, each a service.
for i in $(seq 0 499); do
  printf 'service d%d { process "%s/idle/d%d"; restart "/bin/true" }\n' "$i" "$dir" "$i"
done >"$dir/500.tend"
[ -z "$($tend --insecure --state-dir "$dir/tend-500" -f "$dir/500.tend")" ] || { echo "expected a silent tend pass (500)" >&2; exit 1; }
cmds+=(-n "tend, 500 services" "$tend --insecure --state-dir $dir/tend-500 -f $dir/500.tend")
cmds+=(-n "reference, 500 literals" "$dir/reference $(for i in $(seq 0 499); do printf '%s/idle/d%d ' "$dir" "$i"; done)")
# Dotted paths, unescaped, with each tool; the seed's four by pidfile.
cmds+=(-n "tend, dotted paths" "$tend --insecure --state-dir $dir/tend-dotted -f $dir/dotted.tend")
if command -v cf-agent >/dev/null; then
  cf_any "$dir/dotted.cf" "${dotted[@]}"
  cmds+=(-n "cf-agent, dotted paths" "cf-agent -K -f $dir/dotted.cf")
fi
if command -v monit >/dev/null; then
  monitrc "$dir/monitrc-dotted" /bin/true "${dotted[@]}"
  cmds+=(-n "monit, dotted paths" "monit -c $dir/monitrc-dotted validate")
  monitrc "$dir/monitrc-pidfile" /bin/true $(for d in sshd slapd named apache2; do printf '%s=@%s/pid/%s.pid ' "$d" "$dir" "$d"; done)
  cmds+=(-n "monit, by pidfile" "monit -c $dir/monitrc-pidfile validate")
fi
cmds+=(-n "tend, by pidfile" "$tend --insecure --state-dir $dir/tend-pidfile -f $dir/pidfile.tend")
# -i: `monit validate` exits 1 even when every check passes (monit 5.33).
hyperfine -N -i --warmup 3 --min-runs 20 --style basic ${out:+--export-markdown "$out"} "${cmds[@]}"

echo
echo "peak RSS (KiB):"
for ((i = 1; i < ${#cmds[@]}; i += 3)); do
  /usr/bin/time -f "  ${cmds[i]}: %M" ${cmds[i + 1]} >/dev/null 2>"$dir/time" || true
  tail -1 "$dir/time"
done

# The failure path: apache is down and its restart command fails.
pkill -KILL -f "^$dir/usr/sbin/apache2" || true
echo
echo "failure path (apache down, its restart fails), one run each:"
sed -i 's#service apache { name "Apache"; process "\(.*\)"; restart "/bin/true" }#service apache { name "Apache"; process "\1"; restart "/bin/false"; grace 5s }#' "$dir/services.tend"
/usr/bin/time -f "  tend: %e s" $tend --insecure -D web --state-dir "$dir/tend-fail" -f "$dir/services.tend" >/dev/null 2>"$dir/time" || true
tail -1 "$dir/time"
if command -v cf-agent >/dev/null; then
  cf "$dir/fail.cf" /bin/false
  /usr/bin/time -f "  cf-agent: %e s" cf-agent -K -D web -f "$dir/fail.cf" >/dev/null 2>"$dir/time" || true
  tail -1 "$dir/time"
fi
if command -v monit >/dev/null; then
  monitrc "$dir/monitrc-fail" /bin/false "${seed[@]}"
  /usr/bin/time -f "  monit validate: %e s" monit -c "$dir/monitrc-fail" validate >/dev/null 2>"$dir/time" || true
  tail -1 "$dir/time"
fi
