"""The network a config describes, as train.py, eval.py and export.py build it."""
from .. import config as config_lib
from ..factory import create_model
from ..layers.placement import place_network


def build_network(cfg):
    """The configured model, its implementations placed for the current device (see
    layers.placement); unknown model_kwargs become a ConfigError."""
    try:
        return place_network(create_model(cfg["model"], num_classes=cfg["num_classes"],
                                          **cfg["model_kwargs"]))
    except TypeError as exc:
        raise config_lib.ConfigError(f"model_kwargs {cfg['model_kwargs']} do not fit "
                                     f"{cfg['model']}: {exc}") from None
