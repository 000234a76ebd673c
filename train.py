"""Train a registered model. Delivered by issue 3 (training and evaluation)."""
import sys

if __name__ == "__main__":
    sys.exit("train.py is not implemented yet: issue 3 (training and evaluation) delivers it.")
