"""Model registry: `@register_model` on a function that builds a network by name."""
import difflib
import fnmatch

_ENTRYPOINTS = {}


def register_model(fn):
    """Register `fn` under its own name; a second registration of a name is a bug."""
    name = fn.__name__
    if name in _ENTRYPOINTS:
        raise ValueError(f"model {name!r} is registered twice")
    _ENTRYPOINTS[name] = fn
    return fn


def _registered():
    """The registry, with our model families in it (importing them registers them)."""
    from . import models  # noqa: F401
    return _ENTRYPOINTS


def list_models(pattern="*"):
    """Sorted names of the registered models matching a shell-style pattern."""
    return sorted(n for n in _registered() if fnmatch.fnmatch(n, pattern))


def is_model(name):
    return name in _registered()


def model_entrypoint(name):
    if name not in _registered():
        close = difflib.get_close_matches(str(name), _ENTRYPOINTS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown model {name!r}{hint} Known models: {', '.join(list_models())}")
    return _ENTRYPOINTS[name]
