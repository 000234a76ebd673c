"""Importing this module registers the ACmix models of mindspore-acmix in MindCV's registry.

    import mindspore_acmix.mindcv_plugin
    import mindcv
    net = mindcv.create_model("acmix_resnet50", num_classes=10)
    backbone = mindcv.create_model("swin_acmix_tiny", features_only=True, out_indices=[1, 2, 3])

Only the ACmix models (names holding "acmix") are registered: the baselines' names (resnet50,
swin_tiny, pvt_small, ...) are MindCV's own models. MindCV's register_model reads the
`default_cfgs` of the module an entry point lives in, so each entry point is a thin function
of this module; it takes what mindcv.create_model passes (pretrained, num_classes,
in_channels, drop_rate, drop_path_rate, features_only, out_indices, ...) and hands it to our
registry, which applies the conventions of mindspore_acmix.models.base.

MindCV's own train.py, from a MindCV clone, with our models registered first:

    python -m mindspore_acmix.mindcv_plugin train.py -c CONFIG.yaml --model acmix_resnet50

Needs `pip install mindspore-acmix[mindcv]` (mindcv 0.3.0 tested).
"""
import os
import runpy
import sys

from .factory import get_default_cfg, list_models, model_entrypoint

try:
    from mindcv.models import registry as _mindcv_registry
except ImportError as exc:  # mindcv itself missing, or one of its dependencies (tqdm)
    raise ImportError(f"mindspore_acmix.mindcv_plugin needs MindCV ({exc}): "
                      "pip install 'mindspore-acmix[mindcv]'") from exc

__all__ = []
default_cfgs = {}  # read by mindcv.models.registry.register_model


def _entry_point(name):
    build = model_entrypoint(name)

    def entry(pretrained=False, num_classes=1000, in_channels=3, **kwargs):
        return build(pretrained=pretrained, num_classes=num_classes, in_channels=in_channels,
                     **kwargs)

    entry.__name__ = entry.__qualname__ = name
    entry.__module__ = __name__
    entry.__doc__ = f"{name} of mindspore-acmix ({default_cfgs[name].get('architecture')})."
    return entry


def acmix_models():
    """The names this plugin registers in MindCV."""
    return list_models("*acmix*")


def register_all():
    """Register every ACmix model not yet in MindCV's registry; returns the names added."""
    added = []
    for name in acmix_models():
        if _mindcv_registry.is_model(name):
            continue
        default_cfgs[name] = get_default_cfg(name)
        _mindcv_registry.register_model(_entry_point(name))
        added.append(name)
    return added


def launch(argv):
    """Run the script argv[0] as __main__ with argv as its sys.argv (our models registered)."""
    if not argv or not os.path.isfile(argv[0]):
        print("usage: python -m mindspore_acmix.mindcv_plugin SCRIPT.py [ARGS...]  (e.g. "
              "MindCV's train.py, run from its clone)", file=sys.stderr)
        return 2
    script = os.path.abspath(argv[0])
    sys.argv = [script] + list(argv[1:])
    sys.path.insert(0, os.path.dirname(script))  # as `python SCRIPT.py` would (its config.py)
    runpy.run_path(script, run_name="__main__")
    return 0


register_all()

if __name__ == "__main__":
    sys.exit(launch(sys.argv[1:]))
