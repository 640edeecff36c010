# tend: hold restarts during a dnf (4) transaction.
#
# Install: cp tend.py /usr/lib/python3*/site-packages/dnf-plugins/tend.py
#          cp tend.conf /etc/dnf/plugins/tend.conf
#
# pre_transaction runs before rpm touches the system, transaction after it
# is done. A missing, failing or hung tend is ignored (10 s at most): the
# transaction goes on.
import os
import subprocess
import time

import dnf


def _run(args):
    """Runs tend quietly; never fails, never takes more than TEND_HOOK_TIMEOUT
    (10 s) however tend behaves."""
    try:
        limit = float(os.environ.get("TEND_HOOK_TIMEOUT", "10"))
    except ValueError:
        limit = 10.0
    try:
        null = open(os.devnull, "r+b")
        try:
            child = subprocess.Popen(args, stdin=null, stdout=null, stderr=null)
            deadline = time.time() + limit
            while child.poll() is None:
                if time.time() > deadline:
                    child.kill()
                    child.wait()
                    return
                time.sleep(0.05)
        finally:
            null.close()
    except Exception:
        pass


def _tend(*args):
    _run(("tend",) + args)


class Tend(dnf.Plugin):
    name = "tend"

    def pre_transaction(self):
        _tend("pause", "--by", "dnf", "--reason", "dnf transaction")

    def transaction(self):
        _tend("resume", "--by", "dnf")
