"""The docs stay true: every relative link in README.md and docs/ resolves (file and heading),
and every `python <script>.py ...` / `python -m mindspore_acmix...` command they show parses
with that script's own argument parser, naming config files that exist and resolve."""
import glob
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = sorted({os.path.join(REPO, "README.md"), *glob.glob(os.path.join(REPO, "docs", "**", "*.md"),
                                                           recursive=True),
                *glob.glob(os.path.join(REPO, "*", "README.md"))})
# commands whose flags are another program's: the MindCV plugin runs MindCV's own train.py
FOREIGN = {"mindspore_acmix.mindcv_plugin", "pytest"}
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?$(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`(python3? [^`]+)`")
PLACEHOLDER = re.compile(r"[\[\]|<>]|\.\.\.")


def rel(path):
    return os.path.relpath(path, REPO)


def slug(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path):
    with open(path, encoding="utf-8") as fh:
        text = FENCE.sub("", fh.read())
    return {slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)}


def links(path):
    with open(path, encoding="utf-8") as fh:
        text = FENCE.sub("", fh.read())
    for match in LINK.finditer(text):
        target = match.group(1) or match.group(2)
        if not re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            yield target


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        file_part, _, anchor = target.partition("#")
        path = os.path.normpath(os.path.join(os.path.dirname(page), file_part)) if file_part \
            else page
        if not os.path.exists(path):
            broken.append(f"{target} (no such file)")
        elif anchor and path.endswith(".md") and anchor not in anchors(path):
            broken.append(f"{target} (no heading with that anchor in {rel(path)})")
    assert not broken, f"{rel(page)}: broken links: {', '.join(broken)}"


def command_texts(text):
    """Command lines shown in code blocks (continuations joined) and inline code."""
    for block in FENCE.findall(text):
        yield from re.sub(r"\\\n\s*", " ", block).splitlines()
    yield from INLINE.findall(FENCE.sub("", text))


def commands(page):
    with open(page, encoding="utf-8") as fh:
        text = fh.read()
    for line in command_texts(text):
        for part in re.split(r"&&|;", line):
            try:
                tokens = shlex.split(part, comments=True)
            except ValueError:
                continue
            starts = [i for i, t in enumerate(tokens) if t in ("python", "python3")]
            if not starts:
                continue
            tokens = tokens[starts[0] + 1:]
            if not tokens:
                continue
            if tokens[0] == "-m":
                kind, target, argv = "module", tokens[1], tokens[2:]
                if target.split(".")[0] != "mindspore_acmix" or target in FOREIGN:
                    continue
            elif tokens[0].endswith(".py"):
                kind, target, argv = "script", tokens[0], tokens[1:]
            else:
                continue
            yield {"where": rel(page), "text": part.strip(), "kind": kind, "target": target,
                   "argv": argv, "synopsis": bool(PLACEHOLDER.search(" ".join(argv)))}


def test_every_command_shown_parses():
    shown = [c for page in PAGES for c in commands(page)]
    missing = [f"{c['where']}: `{c['text']}`: no such script" for c in shown
               if c["kind"] == "script" and not os.path.exists(os.path.join(REPO, c["target"]))]
    assert not missing, "\n".join(missing)
    assert len(shown) >= 10, f"found only {len(shown)} commands: is the extraction broken?"
    env = dict(os.environ, GLOG_v="3", PYTHONPATH=os.pathsep.join(
        [REPO, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, os.path.join(REPO, "tests", "docs_commands.py")],
                          input=json.dumps(shown), capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    problems = json.loads(done.stdout.strip().splitlines()[-1])
    assert not problems, "\n".join(problems)


def test_the_command_check_catches_a_wrong_flag_and_a_missing_config():
    bad = [{"where": "x", "text": "t", "kind": "script", "target": "eval.py",
            "argv": ["--no-such-flag"], "synopsis": False},
           {"where": "x", "text": "t", "kind": "script", "target": "train.py",
            "argv": ["--config", "configs/digits/missing.yaml"], "synopsis": False},
           {"where": "x", "text": "t", "kind": "script", "target": "train.py",
            "argv": ["--epochs", "N", "--bogus"], "synopsis": True},
           {"where": "x", "text": "t", "kind": "script", "target": "train.py",
            "argv": ["--set", "epochz=3"], "synopsis": False}]
    env = dict(os.environ, GLOG_v="3", PYTHONPATH=REPO)
    done = subprocess.run([sys.executable, os.path.join(REPO, "tests", "docs_commands.py")],
                          input=json.dumps(bad), capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=300)
    problems = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(problems) == 3, problems  # --set without --config: the default config checks it
    assert "does not parse" in problems[0] and "--no-such-flag" in problems[0]
    assert "does not exist" in problems[1]
    assert "--bogus" in problems[2]
