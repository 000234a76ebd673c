"""Model registry: `@register_model` on a function that builds a network by name.

`@register_model(default_cfg=model_cfg(...))` (or plain `@register_model`) wraps the entry
point so that every registered model takes the keyword arguments timm's and MindCV's
`create_model` pass, whatever family it belongs to:

- `pretrained=False`: True is an error (no weights ship; it says how to convert official
  ones);
- `num_classes` (0: no classifier, pooled features out);
- `in_chans`, or MindCV's `in_channels` (the same thing; both given must agree);
- `features_only=True, out_indices=...`: the model's `set_features_only(out_indices)`, built
  without a classifier: its dense-prediction mode (any input size at or above the model's
  `min_input_size`; see models/base.py);
- everything else goes to the entry point (drop_rate, drop_path_rate, img_size, ...).

The built network carries `default_cfg` (and timm's alias `pretrained_cfg`): the registered
cfg with this instance's num_classes and input channels.

A leaf module (MindCV's registry likewise): the families import it, it imports none of them.
The lookups below see what has been registered; `mindspore_acmix.factory` (and so
`mindspore_acmix.list_models`, `create_model`) imports the families first.
"""
import copy
import difflib
import fnmatch
import functools

_ENTRYPOINTS = {}
_DEFAULT_CFGS = {}

NO_WEIGHTS = ("no pretrained weights ship with mindspore-acmix: convert official PyTorch "
              "weights with `python -m mindspore_acmix.convert --model {name} --input "
              "official.pth --output {name}.ckpt`, then pass checkpoint_path={name}.ckpt")


def register_model(fn=None, *, default_cfg=None):
    """Register `fn` under its own name (with its default_cfg); a second registration of a
    name is a bug. Use bare (`@register_model`) or with `default_cfg=`."""
    if fn is None:
        return functools.partial(register_model, default_cfg=default_cfg)
    name = fn.__name__
    if name in _ENTRYPOINTS:
        raise ValueError(f"model {name!r} is registered twice")

    @functools.wraps(fn)
    def entry(pretrained=False, num_classes=1000, in_chans=None, in_channels=None,
              features_only=False, out_indices=None, **kwargs):
        if pretrained:
            raise ValueError("pretrained=True: " + NO_WEIGHTS.format(name=name))
        if in_chans is not None and in_channels is not None and in_chans != in_channels:
            raise ValueError(f"in_chans ({in_chans}) and in_channels ({in_channels}) are the same "
                             "argument and disagree")
        chans = in_chans if in_chans is not None else in_channels
        if chans is not None:
            kwargs["in_chans"] = chans
        if out_indices is not None and not features_only:
            raise ValueError("out_indices needs features_only=True")
        net = fn(num_classes=0 if features_only else num_classes, **kwargs)
        net.model_label = name
        if default_cfg is not None:
            cfg = copy.deepcopy(default_cfg)
            cfg["num_classes"] = net.num_classes
            if chans is not None:
                cfg["input_size"] = (chans,) + tuple(cfg["input_size"][1:])
            net.default_cfg = net.pretrained_cfg = cfg
        if features_only:
            if not hasattr(net, "set_features_only"):
                raise ValueError(f"features_only is not supported by {name}")
            net.set_features_only(out_indices)
        return net

    _ENTRYPOINTS[name] = entry
    if default_cfg is not None:
        _DEFAULT_CFGS[name] = copy.deepcopy(default_cfg)
    return entry


def get_default_cfg(name):
    """A copy of the registered default_cfg of `name` ({} when it has none)."""
    model_entrypoint(name)
    return copy.deepcopy(_DEFAULT_CFGS.get(name, {}))


def list_models(pattern="*"):
    """Sorted names of the registered models matching a shell-style pattern."""
    return sorted(n for n in _ENTRYPOINTS if fnmatch.fnmatch(n, pattern))


def is_model(name):
    return name in _ENTRYPOINTS


def model_entrypoint(name):
    if not _ENTRYPOINTS:
        raise ValueError(f"unknown model {name!r}: no model is registered yet (import "
                         "mindspore_acmix.factory or mindspore_acmix.models first)")
    if name not in _ENTRYPOINTS:
        close = difflib.get_close_matches(str(name), _ENTRYPOINTS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown model {name!r}{hint} Known models: {', '.join(list_models())}")
    return _ENTRYPOINTS[name]
