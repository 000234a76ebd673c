"""What the scripts do first, before anything imports MindSpore: choose how much of its logging
reaches the user, and make Ctrl-C and SIGTERM end a run cleanly.

Logging: MindSpore prints WARNING lines that are noise for a user of train.py, eval.py and
export.py: "Device Ascend is not available" (probing devices for `device: auto`),
graph-compile notes ("ClearIsolatedNodes] Some side effect nodes were eliminated by
mistake") and, for every image the pipeline skips, the Python traceback of our own check.
Its C++ and Python loggers read GLOG_v once, when mindspore is imported, which is why
importing mindspore_acmix sets it (quiet_mindspore) and imports no MindSpore itself.

Signals: MindSpore's data pipeline replaces Python's SIGINT handler with one that sends
SIGTERM to its own process, so Ctrl-C would end a run as 'Terminated' (exit 143) with no
cleanup (the output directory's lock and scratch folder left behind). SIGTERM is therefore
blocked in every thread (threads inherit the mask from the main thread, which is why this
runs before MindSpore starts any) and taken by one thread with sigwaitinfo, which tells a
SIGTERM this process sent itself (Ctrl-C) from one sent by someone else, records which in
SIGNALS, and raises KeyboardInterrupt in the main thread. Forked children get SIGTERM back.
"""
import _thread
import os
import signal
import threading

VERBOSE_FLAG = "--verbose"
QUIET_LEVEL = "3"  # GLOG_v: 0 debug, 1 info, 2 warning (MindSpore's default), 3 error
WARNING_LEVEL = "2"
SIGNALS = []  # SIGINT or SIGTERM, as they arrive as SIGTERM (see above)


def before_mindspore(argv):
    """Call first thing in a script, with sys.argv."""
    quiet_mindspore(argv)
    watch_termination()


def quiet_mindspore(argv=()):
    """Show only MindSpore's errors (GLOG_v=3) unless GLOG_v is already set; `--verbose` in
    argv shows its warnings too (GLOG_v at most 2: GLOG_v=1 stays 1). The package calls this
    with no argv when it is imported, so Python use is as quiet as the scripts."""
    if VERBOSE_FLAG in argv:
        level = os.environ.get("GLOG_v", "")
        if not (level.isdigit() and int(level) <= int(WARNING_LEVEL)):
            os.environ["GLOG_v"] = WARNING_LEVEL
    else:
        os.environ.setdefault("GLOG_v", QUIET_LEVEL)


def watch_termination():
    if threading.current_thread() is not threading.main_thread() or any(
            t.name == "sigterm-watch" for t in threading.enumerate()):
        return

    def wait():
        while True:
            info = signal.sigwaitinfo({signal.SIGTERM})
            SIGNALS.append(signal.SIGINT if info.si_pid == os.getpid() else signal.SIGTERM)
            _thread.interrupt_main()  # KeyboardInterrupt at the main thread's next check

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    os.register_at_fork(after_in_child=lambda: signal.pthread_sigmask(
        signal.SIG_UNBLOCK, {signal.SIGTERM}))
    threading.Thread(target=wait, name="sigterm-watch", daemon=True).start()


def received_signal():
    """The signal that ended the run: the last one recorded, else SIGINT (a KeyboardInterrupt
    Python raised itself)."""
    return SIGNALS[-1] if SIGNALS else signal.SIGINT
