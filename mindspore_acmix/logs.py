"""How much of MindSpore's own logging reaches the user.

MindSpore prints WARNING lines that are noise for a user of train.py, eval.py and export.py:
"Device Ascend is not available" (probing devices for `device: auto`), graph-compile notes
("ClearIsolatedNodes] Some side effect nodes were eliminated by mistake") and, for every
image the pipeline skips, the Python traceback of our own check. Its C++ and Python loggers
read GLOG_v once, when mindspore is imported, so the scripts call `quiet_mindspore` first.
"""
import os

VERBOSE_FLAG = "--verbose"
QUIET_LEVEL = "3"  # GLOG_v: 0 debug, 1 info, 2 warning (MindSpore's default), 3 error


def quiet_mindspore(argv):
    """Show only MindSpore's errors, unless `--verbose` is in argv or GLOG_v is already set
    (GLOG_v=2 python train.py shows its warnings too). Call before mindspore is imported."""
    if VERBOSE_FLAG not in argv:
        os.environ.setdefault("GLOG_v", QUIET_LEVEL)
