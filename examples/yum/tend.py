# tend: hold restarts during a yum transaction (the seed's monit plugin,
# adapted: tend is paused and resumed instead of stopping a daemon).
#
# Install: cp tend.py /usr/lib/yum-plugins/tend.py
#          cp tend.conf /etc/yum/pluginconf.d/tend.conf
#
# Python 2 and 3. A missing or failing tend is ignored: yum goes on.
import subprocess

from yum.plugins import TYPE_CORE

requires_api_version = "2.1"
plugin_type = (TYPE_CORE,)


def _tend(conduit, message, *args):
    conduit.info(2, message)
    try:
        null = open("/dev/null", "wb")
        try:
            subprocess.call(("tend",) + args, stdout=null, stderr=null)
        finally:
            null.close()
    except Exception:
        pass


def pretrans_hook(conduit):
    _tend(conduit, "Pausing tend", "pause", "--reason", "yum transaction")


def posttrans_hook(conduit):
    _tend(conduit, "Resuming tend", "resume")
