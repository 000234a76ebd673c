"""The package's one per-user cache folder, for what it writes once and can always rebuild:

    <cache_root()>/digits-v1/   the built-in digits data as an ImageFolder tree (data.digits)
    <cache_root()>/digit-canvases-v1/   the segmentation digits (data.digit_canvases)
    <cache_root()>/digit-boxes-v1/      the detection digits, COCO layout (data.digit_boxes)
    <cache_root()>/kernels/     the compiled C++ CPU kernels (cpu.build; ACMIX_KERNEL_CACHE
                                moves them elsewhere)

Deleting the folder costs one rebuild on next use (a few seconds for the data, about a minute
of compiling for the kernels). docs/cache.md is the user's page.
"""
import os

NAME = "mindspore-acmix"


def cache_root(*parts):
    """$XDG_CACHE_HOME/mindspore-acmix (else ~/.cache/mindspore-acmix), joined with `parts`,
    e.g. cache_root("kernels"). Only a path: nothing is created."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, NAME, *parts)
