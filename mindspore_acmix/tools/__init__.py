"""Command-line tools: `python -m mindspore_acmix.tools.flops MODEL`."""
