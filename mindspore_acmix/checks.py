"""The package's argument and input checks, one message each, and the ceiling division the
shape arithmetic shares. A leaf module (no MindSpore, nothing of the package): ops, layers,
models and data all import it (docs/architecture.md).

Each check returns what it checked and its caller goes on with what it returns
(`x = check_...(x, ...)`): in graph mode the condition is decided while the graph compiles
(shapes are constants there), and a check whose result fed nothing would be a call kept only
for its possible raise, which MindSpore's compiler drops with a WARNING per layer ("Some
side effect nodes were eliminated by mistake"). A constexpr check avoids that too, but
prints an ERROR log line above the message when it raises.
"""
import numbers


def ceil_div(n, d):
    """ceil(n / d) of non-negative integers, exactly (no float): e.g. the output positions
    of a stride-d window over n pixels, or the batches of n samples."""
    return -(-n // d)


def positive_int(name, value):
    """value must be an integer >= 1 (a bool is not). Returns value."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def odd_kernel(name, value):
    """A window side: a positive odd integer, so the window has a centre. Returns value."""
    positive_int(name, value)
    if value % 2 == 0:
        raise ValueError(f"{name} must be odd so the window has a centre, got {value}")
    return value


def int_pair(name, value):
    """(h, w) of an int or a pair of positive ints. Returns the pair as a tuple."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    for v in pair:
        positive_int(name, v)
    return pair


def probability(name, value):
    """A drop rate: a number in [0, 1). Returns value."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1), got {value!r}")
    return value


def check_windowed_input(name, x, in_planes, padding, geometry):
    """x must be (N, in_planes, H, W) with H and W above the reflection padding (reflection
    repeats no edge, so a side of `padding` pixels or fewer has nothing to mirror).
    geometry: how the layer names its window, e.g. "kernel_att=7, dilation=1". Returns x."""
    if x.ndim != 4 or x.shape[1] != in_planes:
        raise ValueError(f"{name} expects input (N, {in_planes}, H, W), got {x.shape}")
    h, w = x.shape[2], x.shape[3]
    if min(h, w) <= padding:
        raise ValueError(f"{name} with {geometry} reflect-pads by {padding}, so H and W must "
                         f"be at least {padding + 1}; got {h}x{w}")
    return x


def check_window_map(name, x, dim, window_size):
    """x must be a (B, H, W, dim) token map whose H and W the window divides. Returns x."""
    if x.ndim != 4 or x.shape[3] != dim:
        raise ValueError(f"{name} expects input (B, H, W, {dim}), got {x.shape}")
    wh, ww = window_size
    if x.shape[1] % wh or x.shape[2] % ww:
        raise ValueError(f"the map ({x.shape[1]}x{x.shape[2]}) must be divisible by the "
                         f"window ({wh}x{ww})")
    return x
