"""Writing files so that a crash, a kill or a full disk never leaves a half-written one.

Every file the project writes goes through `atomic_path`: the content is written to a
temporary name beside the target and renamed over it only once complete (a rename within
one folder is atomic on POSIX and Windows), so readers see the old file or the new one,
never a mix. If writing fails, the partial temporary file is removed. The logs a run
appends to row by row are the exception: see CsvAppender and read_csv_log below.
"""
import contextlib
import csv
import io
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


# ------------------------------------------------------------------------------------------
# Logs a run appends to (losses.csv, metrics.csv)
# ------------------------------------------------------------------------------------------
# A run appends rows as it goes, so these cannot be written through atomic_path. A full disk
# or a kill can still cut the last write short and leave half a row. So rows are appended
# whole (all the rows of one call in one write(2), straight to the file, no buffer left
# behind), and a reader takes only the complete rows: a last line without its newline, or a
# line with another number of fields than the header or a value that is not a number, is a
# torn row and left out; a resumed run rewrites the file without it before appending.


def csv_text(rows):
    """CSV lines ending in '\\n' for rows (lists of strings or numbers)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


class CsvAppender:
    """Append whole rows to a CSV file opened for appending (O_APPEND)."""

    def __init__(self, path):
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, rows):
        """All of `rows` in one write call; a short write (a disk filling up) is followed
        by another for the rest, which then raises the OSError."""
        data = csv_text(rows).encode("utf-8")
        while data:
            data = data[os.write(self._fd, data):]

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def append_csv_rows(path, rows):
    appender = CsvAppender(path)
    try:
        appender.append(rows)
    finally:
        appender.close()


def _is_value(text):
    if text == "":
        return True        # an empty cell: a score not computed (metrics.csv's fid)
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_csv_log(path):
    """(header, rows, torn) of a CSV log a run appends to. rows: the complete rows after the
    header (lists of strings), the first field a step number; torn: [(line number, why)]
    of the lines left out. A missing or empty file gives (None, [], [])."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None, [], []
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    last = lines.pop()                 # '' when the file ends with its newline
    torn = []
    if last:
        torn.append((len(lines) + 1, "a last line without its newline (a write cut short)"))
    if not lines:
        return None, [], torn
    header = next(csv.reader([lines[0].rstrip("\r")]))
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        row = next(csv.reader([line.rstrip("\r")]), [])
        if len(row) != len(header):
            torn.append((number, f"{len(row)} fields, the header has {len(header)}"))
        elif not (row[0].strip() and all(_is_value(x) for x in row)):
            torn.append((number, "a value that is not a number"))
        else:
            rows.append(row)
    return header, rows, sorted(torn)
