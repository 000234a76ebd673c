"""Input checks shared by the sliding-window layers (ACmix, SAN's SAM): one message each."""


def check_windowed_input(name, x, in_planes, padding, geometry):
    """x must be (N, in_planes, H, W) with H and W above the reflection padding (reflection
    repeats no edge, so a side of `padding` pixels or fewer has nothing to mirror).
    geometry: how the layer names its window, e.g. "kernel_att=7, dilation=1"."""
    if x.ndim != 4 or x.shape[1] != in_planes:
        raise ValueError(f"{name} expects input (N, {in_planes}, H, W), got {x.shape}")
    h, w = x.shape[2], x.shape[3]
    if min(h, w) <= padding:
        raise ValueError(f"{name} with {geometry} reflect-pads by {padding}, so H and W must "
                         f"be at least {padding + 1}; got {h}x{w}")
