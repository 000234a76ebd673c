"""Check command lines against the argument parsers of the scripts they name (run by
tests/test_docs.py in one subprocess, so MindSpore is imported once).

Reads a JSON list of {"where", "target", "kind" ("script" or "module"), "argv", "synopsis"}
on stdin; prints a JSON list of problems (empty when every command parses). A command is
parsed by calling its script's `main(argv)` with `ArgumentParser.parse_args` replaced by one
that parses and then stops before the script does any work. A synopsis (a command with
placeholders such as `[--epochs N]` or `auto|PATH`) is not parsed as a whole: each `--flag` it
names must be an option of the parser.
"""
import argparse
import contextlib
import io
import json
import os
import runpy
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Parsed(Exception):
    def __init__(self, parser, namespace):
        super().__init__()
        self.parser, self.namespace = parser, namespace


def capture_parser(parse):
    real = argparse.ArgumentParser.parse_args

    def parse_args(self, args=None, namespace=None):
        raise Parsed(self, real(self, args, namespace) if parse else None)

    return parse_args


def load_main(target, kind):
    if kind == "script":
        code = runpy.run_path(os.path.join(REPO, target), run_name="docs_check")
    else:
        code = runpy.run_module(target, run_name="docs_check")
    return code.get("main")


def check_config(namespace):
    """A config file named by --config must exist and resolve with the command's --set."""
    path = getattr(namespace, "config", None)
    if not path:
        return None
    stem = os.path.splitext(os.path.basename(path))[0]
    if stem.isupper() or len(stem) == 1:  # a placeholder: CONFIG.yaml, C
        return None
    full = os.path.join(REPO, path)
    if not os.path.exists(full):
        return f"config file {path} does not exist"
    from mindspore_acmix import config as config_lib
    try:
        overrides = [config_lib.parse_override(text) for text in getattr(namespace, "set", [])]
        config_lib.resolve(full, overrides)
    except config_lib.ConfigError as exc:
        return f"config {path} does not resolve: {exc}"
    return None


def check(command, mains):
    key = (command["target"], command["kind"])
    if key not in mains:
        mains[key] = load_main(*key)
    main = mains[key]
    if main is None:
        return f"{command['target']} has no main(argv)"
    synopsis = command["synopsis"]
    argparse.ArgumentParser.parse_args = capture_parser(parse=not synopsis)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            main([] if synopsis else command["argv"])
    except Parsed as done:
        if synopsis:
            known = done.parser._option_string_actions  # noqa: SLF001 (argparse has no API)
            unknown = [f for f in command["argv"] if f.startswith("--") and f not in known]
            return f"unknown flag(s) {', '.join(unknown)}" if unknown else None
        return check_config(done.namespace)
    except SystemExit:
        return f"does not parse: {err.getvalue().strip().splitlines()[-1:]}"
    return "the script did not call parse_args"


def main():
    problems = []
    mains = {}
    for command in json.load(sys.stdin):
        problem = check(command, mains)
        if problem:
            problems.append(f"{command['where']}: `{command['text']}`: {problem}")
    print(json.dumps(problems))


if __name__ == "__main__":
    main()
