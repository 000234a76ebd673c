"""Input checks of the layers, one message each.

Each returns its input and its caller goes on with what it returns
(`x = check_...(x, ...)`): in graph mode the condition is decided while the graph compiles
(shapes are constants there), and a check whose result fed nothing would be a call kept only
for its possible raise, which MindSpore's compiler drops with a WARNING per layer ("Some
side effect nodes were eliminated by mistake"). A constexpr check avoids that too, but
prints an ERROR log line above the message when it raises.
"""


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
