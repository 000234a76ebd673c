"""What train.py, eval.py and export.py share: the config flags, how errors and interruptions
reach people (with mindspore_acmix.startup, which each script calls first)."""
import argparse
import os
import signal
import sys
import traceback

from . import config as config_lib
from .checkpoint import CheckpointError
from .data.pipeline import DataError
from .startup import VERBOSE_FLAG, received_signal
from .runtime import DeviceError

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(REPO_DIR, "configs", "digits", "acmix_resnet_tiny.yaml")
USER_ERRORS = (config_lib.ConfigError, CheckpointError, DataError, DeviceError)


def add_config_arguments(parser):
    parser.add_argument("--config", default=None,
                        help=f"YAML recipe (default: {os.path.relpath(DEFAULT_CONFIG)})")
    parser.add_argument("--device", choices=("Ascend", "GPU", "CPU"), default=None,
                        help="default: the config's device, else what is available")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key (value read as YAML); repeatable")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument(VERBOSE_FLAG, action="store_true",
                        help="show MindSpore's own warnings (hidden by default; GLOG_v=2 in "
                        "the environment does the same)")


def resolve_config(args, flag_keys, config_path=None):
    """The validated config: the file (args.config, else config_path, else the default), then
    the named flags (attribute -> config key) when given, then --set overrides."""
    path = args.config or config_path or DEFAULT_CONFIG
    overrides = [(key, getattr(args, attr)) for attr, key in flag_keys.items()
                 if getattr(args, attr, None) is not None]
    if args.device is not None:
        overrides.append(("device", args.device))
    overrides += [config_lib.parse_override(text) for text in args.set]
    return config_lib.resolve(path, overrides)


def resolve_resume_config(args, flag_keys, resume):
    """(config, note) of a resumed run: the config.yaml the run saved (beside the checkpoint,
    or in the output directory for 'auto') with only what this call sets explicitly (flags,
    --set, --config) on top; `note` says which file and what changed."""
    cfg = resolve_config(args, flag_keys)
    saved = (config_beside(resume) if resume != "auto"
             else config_beside(os.path.join(cfg["output_dir"], "last.ckpt")))
    if saved is None:
        return cfg, None
    if args.config is None:
        cfg = resolve_config(args, flag_keys, saved)
    before = config_lib.resolve(saved)
    changed = [f"{key} {before[key]!r} -> {cfg[key]!r}" for key in cfg if cfg[key] != before[key]]
    return cfg, (f"resuming with the run's own settings ({saved})"
                 + (f"; changed on this command line: {', '.join(changed)}" if changed else ""))


def config_beside(checkpoint):
    """The config.yaml that train.py wrote beside `checkpoint`, or None."""
    beside = checkpoint and os.path.join(os.path.dirname(checkpoint), "config.yaml")
    return beside if beside and os.path.isfile(beside) else None


def run(main, argv=None, extra_errors=()):
    """Run main(argv): a user error prints one 'error: ...' line and exits 2 (the traceback
    only with --debug); Ctrl-C exits 130, SIGTERM 143, with one line."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        return main(argv)
    except USER_ERRORS + tuple(extra_errors) as exc:
        if "--debug" in argv:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt as exc:  # its message, if any, says where main() stopped
        signum = received_signal()
        name = "Ctrl-C (SIGINT)" if signum == signal.SIGINT else "SIGTERM"
        where = f" {exc}" if str(exc) else ""
        print(f"stopped by {name}{where}", file=sys.stderr, flush=True)
        return 128 + signum


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" only where the help does not already say it and X says something
    (not None, False or an empty list)."""

    def _get_help_string(self, action):
        if action.default in (None, False, []) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def parser(description):
    return argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
