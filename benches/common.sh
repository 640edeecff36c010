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
