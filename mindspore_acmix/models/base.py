"""The conventions every model family here shares with timm and MindCV.

A family gets all of them by doing two things (ResNet, Swin and PVT are the examples):

1. Its network subclasses `Backbone` and, in `__init__`:
   - calls `self._init_head(num_features, num_classes, drop_rate)` after building the trunk
     (`num_classes=0`: no classifier, the model returns pooled features; `drop_rate`:
     dropout before the classifier, pass 0.0 to have none);
   - sets `self.feature_info` to one `feature(chs, reduction, module)` per stage;
   - takes `in_chans` (the registry maps MindCV's `in_channels` onto it);
   and defines
   - `forward_features(x)`: the trunk's output (map or tokens) that `pool_features` reads;
   - `pool_features(x)`: (B, num_features), e.g. a spatial mean;
   - `forward_intermediates(x)`: every stage's output as an NCHW map, in feature_info
     order; the base selects `out_indices` from them (`select_features`).
   Class attributes: `classifier_name` ("fc" or "head": the attribute holding the
   classifier, what default_cfg calls `classifier`), `classifier_init` ("default" or
   "trunc_normal" for transformer heads), `no_weight_decay_keywords` (parameter-name
   fragments that take no weight decay besides every 0-/1-D parameter).
   Dense-prediction mode (what `features_only=True` switches on): `forward_intermediates`
   must take any H, W at or above `min_input_size` (default 1: set it in `__init__` when a
   layer needs more, e.g. a reflection padding); a family whose classification path is
   tied to its build size (Swin's windows, PVT's position tables) overrides
   `_enter_dense_mode()` to become what its official dense-prediction backbone is.

2. Its entry points are registered with `@register_model(default_cfg=model_cfg(...))`
   (mindspore_acmix.registry): the registry then accepts `pretrained`, `in_chans` /
   `in_channels`, `features_only` and `out_indices` for it, and attaches `default_cfg`.

In return the model has `forward_head(x, pre_logits=False)`, `get_classifier()`,
`reset_classifier(num_classes)`, `no_weight_decay()` (full parameter names, used by
engine/optim.py) and `set_features_only(out_indices)` (what `features_only=True` calls: the
dense-prediction mode, whose input-size check names `min_input_size`, and whose
`classification_only_params` / `dense_only_params` let checkpoint.load_backbone_checkpoint
load a classification checkpoint strictly). Parameter names are the family's own: nothing
here adds a prefix.
"""
import copy
import time

from mindspore import nn

from ..layers.transformer import init_transformer_weights

# parameter-name fragments of learned position tables and tokens: no weight decay
POSITION_KEYWORDS = ("relative_position_bias_table", "pos_embed", "cls_token")

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # timm's 0-1 scale; configs use 0-255
IMAGENET_STD = (0.229, 0.224, 0.225)
ACMIX_TABLE = "ACmix paper / README results table"  # default_cfg['paper']['source']


def model_cfg(architecture, input_size=(3, 224, 224), interpolation="bilinear", crop_pct=0.875,
              mean=IMAGENET_MEAN, std=IMAGENET_STD, first_conv="conv1", classifier="fc",
              paper=None, **extra):
    """A model's default_cfg, with timm's keys (input_size, interpolation, crop_pct, mean,
    std on the 0-1 scale, first_conv, classifier) and MindCV's (url, num_classes), plus
    `architecture` (where the architecture comes from) and `paper` (the published params,
    FLOPs and top-1, or None). No weights ship: url is empty."""
    cfg = dict(url="", num_classes=1000, input_size=tuple(input_size),
               interpolation=interpolation, crop_pct=crop_pct, mean=tuple(mean), std=tuple(std),
               first_conv=first_conv, classifier=classifier, architecture=architecture,
               paper=dict(paper) if paper else None)
    cfg.update(extra)
    return cfg


def paper(params, gflops, top1, source):
    """Published numbers for default_cfg['paper']: params and FLOPs as printed, top-1 in %."""
    return dict(params=params, flops=gflops, top1=top1, source=source)


def feature(chs, reduction, module):
    """One feature_info entry with MindCV's keys (chs, reduction, name) and timm's
    (num_chs, reduction, module)."""
    return dict(chs=chs, num_chs=chs, reduction=reduction, name=module, module=module)


class FeatureInfo(list):
    """feature_info of a features_only model: the selected entries, with timm's
    channels() / reduction() / module_name() accessors."""

    def channels(self):
        return [f["num_chs"] for f in self]

    def reduction(self):
        return [f["reduction"] for f in self]

    def module_name(self):
        return [f["module"] for f in self]


def no_weight_decay_names(cell, keywords=POSITION_KEYWORDS):
    """Full names of `cell`'s trainable parameters that take no weight decay: every 0-/1-D
    one (norms, biases, ACmix's rate1/rate2) and those whose name holds a keyword."""
    return {p.name for p in cell.trainable_params()
            if p.ndim <= 1 or any(k in p.name for k in keywords)}


def min_size_pair(value):
    """(h, w) of a min_input_size given as an int or a pair."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


class Backbone(nn.Cell):
    """Base of every model family: see the module docstring for the contract."""

    classifier_name = "head"
    classifier_init = "default"
    no_weight_decay_keywords = POSITION_KEYWORDS
    # smallest H and W (an int or (h, w)) that forward_intermediates takes in dense mode
    min_input_size = 1

    def _init_head(self, num_features, num_classes, drop_rate=0.0):
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be a non-negative integer (0: no classifier, "
                             f"pooled features out), got {num_classes!r}")
        if isinstance(drop_rate, bool) or not isinstance(drop_rate, (int, float)) \
                or not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"drop_rate must be a probability in [0, 1), got {drop_rate!r}")
        self.num_features = num_features
        self.features_only = False
        self.model_label = type(self).__name__  # errors name the model (the registry: by name)
        self.out_indices = ()
        self.head_drop = nn.Dropout(p=float(drop_rate)) if drop_rate > 0 else nn.Identity()
        self._set_classifier(num_classes)

    def _set_classifier(self, num_classes):
        self.num_classes = num_classes
        if num_classes == 0:
            setattr(self, self.classifier_name, nn.Identity())
            return
        dense = nn.Dense(self.num_features, num_classes)
        if self.classifier_init == "trunc_normal":
            init_transformer_weights(dense)
        setattr(self, self.classifier_name, dense)

    # ------------------------------------------------------------------ classifier
    def get_classifier(self):
        return getattr(self, self.classifier_name)

    def reset_classifier(self, num_classes):
        """A new, freshly initialised classifier for `num_classes` (0: none, pooled features
        out). Call before compiling the network (or build a new one)."""
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be a non-negative integer, got {num_classes!r}")
        self._set_classifier(num_classes)
        # the graph cache is keyed by the cell's creation time: a new one forces a recompile
        object.__setattr__(self, "_create_time", max(time.time_ns(), self.create_time + 1))
        if getattr(self, "default_cfg", None) is not None:
            self.default_cfg["num_classes"] = num_classes

    def pool_features(self, x):
        raise NotImplementedError

    def forward_head(self, x, pre_logits=False):
        """Pool forward_features' output, then the classifier (not with pre_logits)."""
        x = self.head_drop(self.pool_features(x))
        if pre_logits:
            return x
        return getattr(self, self.classifier_name)(x)

    def construct(self, x):
        if self.features_only:
            self.check_input_size(x)
            return self.forward_intermediates(x)
        return self.forward_head(self.forward_features(x))

    def check_input_size(self, x):
        """One clear error for an input that is not (B, C, H, W) with H, W at or above
        min_input_size (a compile-time check in graph mode: shapes are static)."""
        min_h, min_w = min_size_pair(self.min_input_size)
        if x.ndim != 4 or x.shape[2] < min_h or x.shape[3] < min_w:
            raise ValueError(f"{self.model_label} (features_only) takes (B, C, H, W) inputs of "
                             f"at least {min_h}x{min_w} pixels (its min_input_size), got "
                             f"{x.shape}")

    # ------------------------------------------------------------------ weight decay
    def no_weight_decay(self):
        """Full names of the parameters that take no weight decay (0-/1-D ones: norms,
        biases, ACmix's rates; position tables and tokens)."""
        return no_weight_decay_names(self, self.no_weight_decay_keywords)

    # ------------------------------------------------------------------ multi-scale
    def set_features_only(self, out_indices=None):
        """Make construct return [NCHW map of stage i for i in out_indices] (default: every
        stage) instead of logits; feature_info keeps the selected entries."""
        stages = len(self.feature_info)
        indices = tuple(range(stages)) if out_indices is None else tuple(out_indices)
        if not indices or any(isinstance(i, bool) or not isinstance(i, int) for i in indices):
            raise ValueError(f"out_indices must be a non-empty sequence of stage indices, got "
                             f"{out_indices!r}")
        indices = tuple(i % stages if -stages <= i < 0 else i for i in indices)
        if any(not 0 <= i < stages for i in indices) or len(set(indices)) != len(indices):
            raise ValueError(f"out_indices must be distinct stage indices in [0, {stages}) "
                             f"(this model has {stages} stages), got {out_indices!r}")
        self.all_feature_info = copy.deepcopy(list(self.feature_info))
        self.feature_info = FeatureInfo(self.all_feature_info[i] for i in indices)
        self.out_indices = indices
        self.features_only = True
        before = {p.name for p in self.get_parameters()}
        self._enter_dense_mode()
        after = {p.name for p in self.get_parameters()}
        # exact names, for load_backbone_checkpoint: what a classification checkpoint holds
        # that this backbone drops (the classifier, never built here, and whatever the
        # family removed), and what only the dense backbone has (left at its init)
        classifier = [f"{self.classifier_name}.{n}" for n in ("weight", "bias")]
        self.classification_only_params = tuple(sorted(before - after)) + tuple(classifier)
        self.dense_only_params = tuple(sorted(after - before))
        return self

    def _enter_dense_mode(self):
        """Become the family's dense-prediction backbone (any input size at or above
        min_input_size). Nothing to do for fully convolutional families."""

    @property
    def out_channels(self):
        """MindCV's name for the channels of the selected outputs."""
        return [f["chs"] for f in self.feature_info]

    def select_features(self, feats):
        """The maps of `out_indices` from a tuple of every stage's map."""
        out = []
        for i in self.out_indices:
            out.append(feats[i])
        return out

    def forward_intermediates(self, x):
        raise NotImplementedError
