"""The dtypes of a compiled graph, read from the IR MindSpore saves, and what AMP O2 must give.

MindSpore writes the graph it executes when saving graphs is on (MS_DEV_SAVE_GRAPHS=1 or
set_context(save_graphs=1); MS_DEV_DUMP_IR_PASSES=execute keeps only that pass):
`NN_execute_NNNN.ir`, one node per block:

    %46(CNode_3243) = PrimFunc_Softmax(%45, (I64(-1))) cnode_attrs: {...}
        : (<Tensor[Float32], (2, 3, 16, 16)>, <Tuple[Int64], ...>) -> (<Tensor[Float32], ...>)
        # Fullname with scope: (Default/.../softmax-Float32Softmax/Softmax-op0)
"""
import glob
import os
import re
import tempfile

_NODE = re.compile(r"^\s*%\d+\([^)]*\) = (?:PrimFunc_)?([A-Za-z][A-Za-z0-9_]*)\(")
_TYPES = re.compile(r"^\s*: \((.*)\) -> \((.*)\)\s*$")
_TENSOR = re.compile(r"Tensor\[(\w+)\]")
_EXECUTE = re.compile(r"^\d+_execute_\d+\.ir$")
_SCOPE = re.compile(r"# Fullname with scope: \((.*)\)")

# must see only float32 inputs in the forward under O2: norms, softmax, and the loss
# (nn.CrossEntropyLoss compiles to ReduceMax, Sub, Exp, SumExt, Log, GatherD; no layer of
# ours uses Exp or Log in its forward). Backward nodes (scope "Gradients/...") follow their
# forward's dtypes, e.g. GELU's Erf gradient (Exp) in float16.
FP32_OPS = ("BatchNorm", "SyncBatchNorm", "LayerNorm", "GroupNorm", "Softmax", "LogSoftmax",
            "Exp", "Log")
# must run in float16 somewhere, or O2 was not applied at all
FP16_OPS = ("Conv2D", "MatMul", "BatchMatMul", "MatMulExt")


def compiled_ops(run):
    """read_op_dtypes of the graphs that `run()` compiles (it must compile something new)."""
    import mindspore as ms

    with tempfile.TemporaryDirectory() as folder:
        os.environ["MS_DEV_DUMP_IR_PASSES"] = "execute"
        # set_context(save_graphs=...) is deprecated for the env variable, but the variable
        # is read once, when MindSpore starts: this saves the graphs of one call only
        ms.set_context(save_graphs=1, save_graphs_path=folder)
        try:
            run()
        finally:
            ms.set_context(save_graphs=0)
            os.environ.pop("MS_DEV_DUMP_IR_PASSES", None)
        return read_op_dtypes(folder)


def read_op_dtypes(folder):
    """[(op, input tensor dtypes, output tensor dtypes, scope)] of every execute-pass graph
    saved under `folder` (forward and backward nodes alike)."""
    found = []
    paths = glob.glob(os.path.join(folder, "**", "*.ir"), recursive=True)
    for path in sorted(p for p in paths if _EXECUTE.match(os.path.basename(p))):
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
        for i, line in enumerate(lines):
            node = _NODE.match(line)
            if not node or i + 1 >= len(lines):
                continue
            types = _TYPES.match(lines[i + 1])
            if not types:
                continue
            scope = _SCOPE.search(lines[i + 2]) if i + 2 < len(lines) else None
            found.append((node.group(1), _TENSOR.findall(types.group(1)),
                          _TENSOR.findall(types.group(2)), scope.group(1) if scope else ""))
    return found


def amp_violations(found):
    """(problems, summary) of an O2 graph's forward nodes: a FP32_OPS node with a float16
    input is a problem, and so is a graph whose FP16_OPS are all float32. summary:
    {op: {dtype: count}} of the ops of both lists."""
    summary, problems = {}, []
    for op, inputs, _, scope in found:
        if op not in FP32_OPS + FP16_OPS or scope.startswith("Gradients/"):
            continue
        dtype = "Float16" if "Float16" in inputs else ("Float32" if "Float32" in inputs
                                                        else "other")
        counts = summary.setdefault(op, {})
        counts[dtype] = counts.get(dtype, 0) + 1
        if op in FP32_OPS and dtype == "Float16":
            problems.append(f"{op} runs in float16 ({scope or 'no scope'})")
    if not found:
        problems.append("no compiled graph was saved")
    elif not any(summary.get(op, {}).get("Float16") for op in FP16_OPS):
        problems.append("no convolution or matmul runs in float16: O2 was not applied")
    if found and not any(op in summary for op in FP32_OPS):
        problems.append("no norm, softmax or loss operator found in the graph")
    return problems, summary
