"""msrun, with the scheduler on node 0 only (run by scripts/run_distribute_train.sh; the same
arguments as msrun).

msrun starts the scheduler on every node whose own addresses include --master_addr. On a
cluster that is node 0 alone, but several "nodes" on one machine (or a node whose address
list happens to hold the master's) would each try to start one: the second fails to bind the
port and that node's msrun exits non-zero after a successful run. The launcher defines node 0
as the scheduler's host, so that is where it runs.
"""
import sys

from mindspore.parallel.cluster.process_entity._api import _ProcessManager
from mindspore.parallel.cluster.run import get_args


def main():
    args = get_args()
    manager = _ProcessManager(args)
    manager.is_master = args.node_rank in (0, -1)
    manager.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
