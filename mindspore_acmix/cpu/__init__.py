"""The CPU acceleration: C++ kernels (kernels/), compiled on first use into a per-user cache
(build), run as MindSpore AOT Custom ops: ACmix's local attention (attention, attn_impl="aot"),
SAN's operators (san, san_impl="aot") and the tap passes of the matmul convolutions (taps,
conv_impl="matmul"). Nothing here runs off CPU or exports to ONNX; every layer that uses it
has a graph-operator implementation that does (see mindspore_acmix.implementations)."""
