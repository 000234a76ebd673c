"""Built-in data written once into the user cache."""
import os
import shutil
import tempfile


def write_tree_once(root, write, stamp):
    """`root`, filled on first use by write(folder) in a temporary folder beside it that is
    renamed into place with a COMPLETE file holding `stamp`: an interrupted first run never
    leaves a half-written tree, and a tree without COMPLETE is rewritten."""
    if os.path.isfile(os.path.join(root, "COMPLETE")):
        return root
    parent = os.path.dirname(os.path.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(root)}-", dir=parent)
    try:
        write(tmp)
        with open(os.path.join(tmp, "COMPLETE"), "w") as fh:
            fh.write(stamp + "\n")
        if os.path.isdir(root):  # an incomplete tree from an older, interrupted writer
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
    return root
