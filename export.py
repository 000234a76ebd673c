"""Export a checkpoint to MindIR / ONNX / AIR. Delivered by issue 4 (export and edge inference)."""
import sys

if __name__ == "__main__":
    sys.exit("export.py is not implemented yet: issue 4 (export and edge inference) delivers it.")
