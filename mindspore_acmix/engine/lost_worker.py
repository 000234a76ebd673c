"""After a failed msrun job: the line that names the lost worker (run by
scripts/run_distribute_train.sh; reads only text files, imports no MindSpore).

msrun reports a dead local worker by pid ("Worker process P exit with exception. Error code:
C") and then kills the others; the scheduler on node 0 reports a worker of any node that
stopped answering ("The node: R is timed out") and stops the job. Each worker logs
"rank R of W, pid P" at start, which turns pids into ranks.

    python mindspore_acmix/engine/lost_worker.py LOG_DIR NODE_RANK
"""
import glob
import os
import re
import signal
import sys

EXIT = re.compile(r"Worker process (\d+) exit with exception\. Error code: (-?\d+)")
TIMED_OUT = re.compile(r"The node: (\d+) is timed out")
RANK_PID = re.compile(r"^rank (\d+) of \d+, pid (\d+)$", re.M)
# exit codes that are a worker's own orderly error (it printed its "error: ..." line)
ORDERLY = (1, 2, 130)


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def describe(code):
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = " (by hand or by the out-of-memory killer)" if -code == signal.SIGKILL else ""
        return f"was killed by {name}{why}"
    return f"exited with code {code}"


def lost_workers(log_dir, node_rank):
    """[(rank or None, pid or None, what happened)] of the workers this job lost."""
    ranks = {}
    for path in glob.glob(os.path.join(log_dir, "worker_*.log")):
        for rank, pid in RANK_PID.findall(_read(path)):
            ranks[pid] = int(rank)
    launcher = _read(os.path.join(log_dir, f"msrun_node_{node_rank}.log"))
    timed_out = sorted({int(r) for r in TIMED_OUT.findall(
        launcher + _read(os.path.join(log_dir, "scheduler.log")))})
    lost = []
    for pid, code in EXIT.findall(launcher):
        code, rank = int(code), ranks.get(pid)
        if code in ORDERLY or (code == -signal.SIGTERM and timed_out and rank not in timed_out):
            continue  # its own error line is in its log; or stopped because of another
        lost.append((rank, pid, describe(code)))
    named = {rank for rank, _, _ in lost}
    lost += [(rank, None, "stopped answering the scheduler (its process or node died)")
             for rank in timed_out if rank not in named]
    return lost


def main(argv):
    log_dir, node_rank = argv[0], int(argv[1])
    for rank, pid, text in lost_workers(log_dir, node_rank):
        who = f"worker rank {rank}" if rank is not None else "a worker"
        who += f" (pid {pid})" if pid else ""
        print(f"error: lost {who}: it {text}; the job was stopped (logs in {log_dir}); "
              "run the same command with --resume auto to continue from the last "
              "checkpoint", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
