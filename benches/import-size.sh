#!/usr/bin/env bash
# Whole-process benchmark of `tend import` at 4,000 and 16,000 checks,
# side by side with `tend validate` of the same number of services: import
# reads, converts, renders and then checks its own output as validate does,
# so it should take a small multiple of validate's time, and four times the
# checks about four times as long (sixteen would be quadratic). Needs
# hyperfine (apt-get install hyperfine).
#
#   bash benches/import-size.sh [RESULTS.md]
#
# Inputs, N each:
#   - a monitrc of N `check process` blocks (pidfile, start and stop
#     programs, a port test, a restart limit)
#   - a CFEngine bundle of N `processes:` promises, each with the
#     `commands:` promise its restart_class guards
#   - a tend policy of N services (for validate)
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh
out=${1:-}

bench_setup tendimport

python3 - "$dir" <<'EOF'
import os, sys
d = sys.argv[1]
for n in (4_000, 16_000):
    with open(f"{d}/monitrc-{n}", "w") as f:
        for i in range(n):
            f.write(f'check process svc{i} with pidfile /run/svc{i}.pid\n'
                    f'  start program = "/usr/sbin/service svc{i} start"\n'
                    f'  stop program = "/usr/sbin/service svc{i} stop"\n'
                    f'  if failed port {1000 + i % 50000} then restart\n'
                    f'  if 5 restarts within 20 cycles then timeout\n\n')
    os.chmod(f"{d}/monitrc-{n}", 0o600)
    with open(f"{d}/bundle-{n}.cf", "w") as f:
        f.write("bundle agent main {\n processes:\n")
        f.writelines(f'  "/usr/sbin/svc{i}" restart_class => "start_svc{i}";\n' for i in range(n))
        f.write(" commands:\n")
        f.writelines(f'  start_svc{i}:: "/usr/sbin/service svc{i} start";\n' for i in range(n))
        f.write("}\n")
    os.makedirs(f"{d}/policy-{n}")
    with open(f"{d}/policy-{n}/services.tend", "w") as f:
        f.writelines(f'service svc{i} {{ process "/usr/sbin/svc{i}"; restart "/usr/sbin/service svc{i} start" }}\n'
                     for i in range(n))
EOF

cmds=()
for n in 4000 16000; do
  cmds+=(-n "validate $n services" "$tend validate $dir/policy-$n")
  cmds+=(-n "import monit $n checks" "$tend import monit $dir/monitrc-$n -o $dir/out")
  cmds+=(-n "import cfengine $n promises" "$tend import cfengine $dir/bundle-$n.cf -o $dir/out")
done

hyperfine -N -i --warmup 1 --min-runs 3 --style basic --prepare "rm -rf $dir/out" ${out:+--export-markdown "$out"} "${cmds[@]}"
