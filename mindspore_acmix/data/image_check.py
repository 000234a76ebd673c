"""Structural checks of encoded images, run before MindSpore's decoder sees them.

MindSpore 2.10's C++ decoder kills the whole process (SIGFPE) on some truncated JPEGs, in
every error mode, and writes `abnormal_image.jpg` / `unsupported_image.*` into the working
directory for every file it cannot decode. Walking the headers and looking for the end
markers is cheap (no pixel is decoded) and turns those files into an ordinary per-sample
error that the pipeline skips or reports by name.
"""
import argparse
import os
import re
import sys

# the formats MindSpore's C++ Decode reads (GIF and WebP it refuses)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
# what an ImageFolder tree holds as images: ImageFolderDataset matches extensions
# case-sensitively, so .jpg and .JPG are read and .Jpg is not
FOLDER_EXTENSIONS = IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS)
# prefix of the messages below, so a pipeline error can be told apart from other failures
MARK = "unreadable image"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# start-of-frame markers: C0-CF without DHT (C4), JPG (C8) and DAC (CC)
JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_problem(b):
    n, i, frame = len(b), 2, False
    while True:
        if i + 4 > n:
            return "truncated JPEG (it ends inside its header)"
        if b[i] != 0xFF:  # stray bytes between segments: libjpeg skips to the next marker
            i = b.find(b"\xff", i)
            if i < 0:
                return "truncated JPEG (it ends inside its header)"
            continue
        marker = b[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if marker == 0xD9:
            return "corrupt JPEG (it ends before any image data)"
        length = int.from_bytes(b[i + 2:i + 4], "big")
        if length < 2 or i + 2 + length > n:
            return "truncated JPEG (it ends inside its header)"
        if marker in JPEG_SOF:
            if length < 8:
                return "corrupt JPEG frame header"
            height, width = int.from_bytes(b[i + 5:i + 7], "big"), int.from_bytes(
                b[i + 7:i + 9], "big")
            if height == 0 or width == 0:
                return f"corrupt JPEG (it declares a {width} x {height} image)"
            frame = True
        if marker == 0xDA:
            if not frame:
                return "corrupt JPEG (image data before the frame header)"
            # inside entropy-coded data 0xFF is always followed by 0x00 or a restart marker,
            # so an FFD9 after the scan header is the real end-of-image marker
            if b.find(b"\xff\xd9", i + 2 + length) < 0:
                return "truncated JPEG (no end-of-image marker)"
            return None
        i += 2 + length


def _png_problem(b):
    n, i = len(b), 8
    if n < 33 or b[12:16] != b"IHDR":
        return "truncated PNG (no complete image header)"
    if int.from_bytes(b[16:20], "big") == 0 or int.from_bytes(b[20:24], "big") == 0:
        return "corrupt PNG (it declares a zero-sized image)"
    while i + 12 <= n:
        length = int.from_bytes(b[i:i + 4], "big")
        if b[i + 4:i + 8] == b"IEND":
            return None
        i += 12 + length
    return "truncated PNG (no end chunk)"


def _bmp_problem(b):
    if len(b) < 26:
        return "truncated BMP (no complete header)"
    declared = int.from_bytes(b[2:6], "little")
    if declared > len(b):
        return f"truncated BMP ({len(b)} of {declared} bytes)"
    if int.from_bytes(b[18:22], "little", signed=True) == 0 or int.from_bytes(
            b[22:26], "little", signed=True) == 0:
        return "corrupt BMP (it declares a zero-sized image)"
    return None


def image_problem(b):
    """Why the encoded image `b` (bytes) cannot be decoded, or None when it looks sound."""
    if not b:
        return "empty file (0 bytes)"
    if b[:3] == b"\xff\xd8\xff":
        return _jpeg_problem(b)
    if b[:8] == PNG_SIGNATURE:
        return _png_problem(b)
    if b[:2] == b"BM":
        return _bmp_problem(b)
    if b[:4] in (b"II*\x00", b"MM\x00*"):
        return None
    if b[:6] in (b"GIF87a", b"GIF89a") or (b[:4] == b"RIFF" and b[8:12] == b"WEBP"):
        kind = "GIF" if b[:3] == b"GIF" else "WebP"
        return f"{kind} is not a format MindSpore's decoder reads (convert it to JPEG or PNG)"
    return "not a JPEG, PNG, BMP or TIFF image"


def check_encoded(data):
    """Dataset map operation on the raw bytes column: passes a sound image through and raises
    for one that is not (the pipeline then skips the sample or stops, naming the file)."""
    problem = image_problem(data.tobytes())
    if problem is not None:
        raise ValueError(f"{MARK}: {problem}")
    return data


class DataError(ValueError):
    """A dataset folder or image that cannot be used."""


def check_one_batch(what, num_samples, batch_size, world):
    """A training split must give every device at least one full batch (the last partial batch
    is dropped): `what` names the split in the message."""
    if num_samples // world < batch_size:
        raise DataError(f"{what} has {num_samples} images: fewer than one batch of "
                        f"{batch_size} per device")


def file_problem(path):
    """image_problem of the file at `path`, reading it whole (for reports, not pipelines)."""
    with open(path, "rb") as fh:
        return image_problem(fh.read())


def read_image_file(path):
    """The bytes of an image file as uint8, or DataError naming the file and its problem."""
    import numpy as np

    data = np.fromfile(path, np.uint8)
    problem = image_problem(data.tobytes())
    if problem is not None:
        raise DataError(f"{MARK} {path}: {problem}")
    return data


def pipeline_error(exc):
    """A DataError naming the file and the problem of a MindSpore pipeline failure on one
    sample, or None when the message names no file."""
    text = str(exc)
    found = re.search(r"The corresponding data file is: (.*?)\.\s", text)
    if not found:
        return None
    ours = re.search(MARK + r": (.*)", text)
    reason = ours.group(1).strip() if ours else text[found.end():].split("\n")[0].split(
        " Dump the")[0].strip()
    return DataError(f"{MARK} {found.group(1)}: {reason}")


def is_image_name(name):
    """True for the files of an ImageFolder tree that the pipeline reads."""
    return name.endswith(FOLDER_EXTENSIONS)


def find_bad_images(folder):
    """[(path, problem)] of every image file under the class folders of `folder`, in order."""
    bad = []
    for cls in sorted(os.listdir(folder)):
        directory = os.path.join(folder, cls)
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if is_image_name(name) and os.path.isfile(path):
                problem = file_problem(path)
                if problem is not None:
                    bad.append((path, problem))
    return bad


def _is_split(folder):
    """True when a class sub-folder of `folder` holds an image file."""
    return any(is_image_name(name) for cls in _subfolders(folder)
               for name in os.listdir(os.path.join(folder, cls)))


def _subfolders(folder):
    return sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))


def split_folders(folder):
    """`folder` itself when it is a split (<class>/<image>), else the splits under it (a
    dataset root holding train/ and val/)."""
    if _is_split(folder):
        return [folder]
    return [os.path.join(folder, d) for d in _subfolders(folder)
            if _is_split(os.path.join(folder, d))]


def main(argv=None):
    """python -m mindspore_acmix.data.image_check FOLDER: list the images the pipeline would
    skip in FOLDER (a split such as imagenet/train, or a dataset root: every split in it);
    exit status 1 when there are any, 2 when FOLDER holds no ImageFolder split."""
    parser = argparse.ArgumentParser(
        prog="python -m mindspore_acmix.data.image_check",
        description="List the images the data pipeline would skip as unreadable.")
    parser.add_argument("folder", help="a split such as DATA/train, or a dataset root: every "
                        "split in it")
    folder = parser.parse_args(argv).folder
    if not os.path.isdir(folder):
        print(f"error: folder {folder} does not exist", file=sys.stderr)
        return 2
    splits = split_folders(folder)
    if not splits:
        print(f"error: {folder} holds no <class>/<image> files, nor splits (train/, val/) "
              "that do", file=sys.stderr)
        return 2
    total = 0
    for split in splits:
        bad = find_bad_images(split)
        for path, problem in bad:
            print(f"{path}: {problem}")
        print(f"{len(bad)} unreadable image(s) in {split}", file=sys.stderr)
        total += len(bad)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
