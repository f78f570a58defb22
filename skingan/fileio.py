"""Writing files so that a crash, a kill or a full disk never leaves a half-written one.

Every file the project writes goes through `atomic_path`: the content is written to a
temporary name beside the target and renamed over it only once complete (a rename within
one folder is atomic on POSIX and Windows), so readers see the old file or the new one,
never a mix. If writing fails, the partial temporary file is removed.
"""
import contextlib
import json
import os


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path to write `path`'s new content to; rename it into place on
    success, remove it on failure. The temporary name keeps the extension (Keras and
    matplotlib choose the format from it)."""
    root, ext = os.path.splitext(path)
    tmp = f"{root}.tmp-{os.getpid()}{ext}"
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path, obj):
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)


def write_lines(path, lines):
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.writelines(f"{line}\n" for line in lines)
