# tend: hold restarts during a yum transaction (the seed's monit plugin,
# adapted: tend is paused and resumed instead of stopping a daemon).
#
# Install: cp tend.py /usr/lib/yum-plugins/tend.py
#          cp tend.conf /etc/yum/pluginconf.d/tend.conf
#
# Python 2 and 3. A missing, failing or hung tend is ignored (10 s at most):
# yum goes on.
import os
import subprocess
import time

from yum.plugins import TYPE_CORE

requires_api_version = "2.1"
plugin_type = (TYPE_CORE,)


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


def _tend(conduit, message, *args):
    conduit.info(2, message)
    _run(("tend",) + args)


def pretrans_hook(conduit):
    _tend(conduit, "Pausing tend", "pause", "--by", "yum", "--reason", "yum transaction")


def posttrans_hook(conduit):
    _tend(conduit, "Resuming tend", "resume", "--by", "yum")
