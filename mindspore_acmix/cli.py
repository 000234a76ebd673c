"""What train.py, eval.py and export.py share: the config flags and how errors reach people."""
import argparse
import os
import sys
import traceback

from . import config as config_lib
from .checkpoint import CheckpointError
from .data.pipeline import DataError

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(REPO_DIR, "configs", "digits", "acmix_resnet_tiny.yaml")
USER_ERRORS = (config_lib.ConfigError, CheckpointError, DataError)


def add_config_arguments(parser):
    parser.add_argument("--config", default=None,
                        help=f"YAML recipe (default: {os.path.relpath(DEFAULT_CONFIG)})")
    parser.add_argument("--device", choices=("Ascend", "GPU", "CPU"), default=None,
                        help="default: the config's device, else what is available")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key (value read as YAML); repeatable")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")


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


def config_beside(checkpoint):
    """The config.yaml that train.py wrote beside `checkpoint`, or None."""
    beside = checkpoint and os.path.join(os.path.dirname(checkpoint), "config.yaml")
    return beside if beside and os.path.isfile(beside) else None


def run(main, argv=None, extra_errors=()):
    """Run main(argv): a user error prints one 'error: ...' line and exits 2 (the traceback
    only with --debug)."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        return main(argv)
    except USER_ERRORS + tuple(extra_errors) as exc:
        if "--debug" in argv:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def parser(description):
    return argparse.ArgumentParser(description=description,
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
