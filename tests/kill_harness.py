"""train.py with one checkpoint write that stalls halfway, for the SIGKILL tests.

    ACMIX_STALL=save:2 python tests/kill_harness.py --config ...   # 2nd ms.save_checkpoint
    ACMIX_STALL=copy:1 python tests/kill_harness.py --config ...   # 1st copy to last/best

The stalled write has produced half of its temporary file when the harness prints
`STALLED <path>` and sleeps: the test SIGKILLs the process at that moment.
"""
import os
import runpy
import shutil
import sys
import time

import mindspore as ms

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KIND, NUMBER = os.environ["ACMIX_STALL"].split(":")
calls = {"save": 0, "copy": 0}


def stall_if_due(kind, path):
    calls[kind] += 1
    if kind == KIND and calls[kind] == int(NUMBER):
        with open(path, "r+b") as fh:
            fh.truncate(os.path.getsize(path) // 2)
        print(f"STALLED {path}", flush=True)
        time.sleep(3600)


real_save, real_copy = ms.save_checkpoint, shutil.copyfile


def save_checkpoint(save_obj, ckpt_file_name, *args, **kwargs):
    real_save(save_obj, ckpt_file_name, *args, **kwargs)
    stall_if_due("save", ckpt_file_name)


def copyfile(src, dst, *args, **kwargs):
    result = real_copy(src, dst, *args, **kwargs)
    if str(dst).endswith(".ckpt"):
        stall_if_due("copy", dst)
    return result


ms.save_checkpoint, shutil.copyfile = save_checkpoint, copyfile
sys.argv = [os.path.join(REPO, "train.py")] + sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
