#!/usr/bin/env bash
# Whole-process benchmark of tend against policies that are big on purpose,
# 10,000 and 100,000 of a thing side by side: if the time grows about ten
# times, it is linear; a hundred times would be quadratic. Needs hyperfine
# (apt-get install hyperfine).
#
#   bash benches/policy-size.sh [RESULTS.md]
#
# Each size is timed for:
#   - validate          parse, analyze, warnings
#   - plan --host x     which services apply on another host, and why
#   - --dry-run         a pass that changes nothing: the policy, the classes,
#                       one scan of the process table, every service judged
#                       (no service runs, so nothing would be restarted)
# over:
#   - N services, plain paths (a directory of *.tend files: a file may be
#     4 MiB at most)
#   - a chain of N `depends on`, and a chain of N class definitions
#   - N broken services (2N errors rendered with file, line and caret)
#   - one `process` literal of N*10 bytes (the matcher)
#   - a guard of N `!`
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh
out=${1:-}

bench_setup tendsize

python3 - "$dir" <<'EOF'
import os, sys
d = sys.argv[1]

def files(name, lines, per=20000):
    os.makedirs(f"{d}/{name}", exist_ok=True)
    for k in range(0, len(lines), per):
        with open(f"{d}/{name}/{k // per:03}.tend", "w") as f:
            f.write("".join(lines[k:k + per]))

for n in (10_000, 100_000):
    files(f"services-{n}", [f'service s{i} {{ process "/usr/sbin/d{i}"; restart "true" }}\n' for i in range(n)])
    files(f"depends-{n}", [f'service s{i} {{ process "/s{i}"; restart "true"; depends on s{i + 1} }}\n' for i in range(n)]
          + [f'service s{n} {{ process "/z"; restart "true" }}\n'])
    files(f"classes-{n}", [f"class c{i} = c{i + 1}\n" for i in range(n)]
          + [f"class c{n} = linux\n", "c0::\n", 'service a { process "/a"; restart "true" }\n'], per=10 ** 9)
    files(f"broken-{n}", [f'service s{i} {{ process "/a"; restrat "x" }}\n' for i in range(n)])
    files(f"literal-{n}", ['service a { process "/' + "a" * (n * 10) + '"; restart "true" }\n'])
    files(f"nots-{n}", ["!" * n + "web::\n", 'service a { process "/a"; restart "true" }\n'])
EOF

cmds=()
for what in services depends classes broken literal nots; do
  for n in 10000 100000; do
    p="$dir/$what-$n"
    cmds+=(-n "validate $what $n" "$tend --insecure --state-dir $dir/state -f $p validate")
  done
done
for what in services depends classes literal; do
  for n in 10000 100000; do
    p="$dir/$what-$n"
    cmds+=(-n "plan $what $n" "$tend --insecure --state-dir $dir/state -f $p plan --host x")
    cmds+=(-n "dry-run $what $n" "$tend --insecure --state-dir $dir/state -f $p --dry-run")
  done
done

hyperfine -N -i --warmup 1 --min-runs 3 --style basic ${out:+--export-markdown "$out"} "${cmds[@]}"
