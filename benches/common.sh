# Sourced by the benchmark scripts, after `set -euo pipefail` and a `cd` to
# the project: `bench_setup NAME` checks for hyperfine, builds the release
# binary ($tend) and makes a scratch directory ($dir, /tmp/NAME_XXXXXX; no
# `.` in it, which would make a path pattern a regular expression) whose
# processes and files go when the script ends.
bench_setup() {
  command -v hyperfine >/dev/null || { echo "needs hyperfine: apt-get install hyperfine" >&2; exit 2; }
  cargo build --release -q
  tend=$PWD/target/release/tend
  dir=$(mktemp -d "/tmp/$1_XXXXXX")
  trap 'pkill -KILL -f "^$dir/" 2>/dev/null || true; rm -rf "$dir"' EXIT
}

# CFEngine, any services: cf_any FILE NAME=PATTERN...
cf_any() {
  local file=$1 lib=/var/lib/cfengine3/masterfiles/lib/stdlib.cf
  shift
  {
    echo "body common control { bundlesequence => { \"services\" }; inputs => { \"$lib\" }; }"
    echo "bundle agent services {"
    echo "processes:"
    for d in "$@"; do
      printf '  "%s" restart_class => "service_%s_restart";\n' "${d#*=}" "${d%%=*}"
    done
    echo "commands:"
    for d in "$@"; do
      printf '  "/bin/true" ifvarclass => "service_%s_restart";\n' "${d%%=*}"
    done
    echo "}"
  } >"$file"
  chmod 600 "$file"
}
# Monit, any services: monitrc FILE START NAME=PATTERN... (`matching`), or
# NAME=@PIDFILE (`with pidfile`).
monitrc() {
  local file=$1 start=$2
  shift 2
  {
    echo "set daemon 300"
    echo "set idfile $dir/monit.id"
    echo "set statefile $dir/monit.state"
    echo "set logfile $dir/monit.log"
    for d in "$@"; do
      case ${d#*=} in
        @*) printf 'check process %s with pidfile "%s"\n  start program = "%s"\n' "${d%%=*}" "${d#*=@}" "$start" ;;
        *) printf 'check process %s matching "%s"\n  start program = "%s"\n' "${d%%=*}" "${d#*=}" "$start" ;;
      esac
    done
  } >"$file"
  chmod 600 "$file"
}
