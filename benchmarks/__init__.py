"""Benchmarks (not tests; not part of the installed package). One command line for people,
benchmarks/bench_acmix.py --mode ..., and one module per thing measured:

common.py   timing by turns, peak memory, the machine record, JSON, running a probe
layers.py   one ACmix layer and SAN's patchwise SAM against a 3x3 convolution (layer, san)
models.py   acmix_resnet50 against resnet50: training step, MindIR inference, dense sizes
graphs.py   compiled-graph counts: operators and multiply-accumulates (graph; halo MACs)
probe.py    one measurement in a fresh process, with its own command line
"""
