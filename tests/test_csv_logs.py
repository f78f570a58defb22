"""losses.csv and metrics.csv: rows are written whole, and a torn row (half a line left by
a full disk or a kill) is never read nor extended by a resumed run (issue 23, item 12)."""
import errno
import os

import numpy as np
import pytest

from skingan import fileio
from skingan.fileio import read_csv_log
from skingan.monitoring import TrainingLog, restart_csv

FIELDS = ["d_loss", "g_loss"]


def logged(tmp_path, steps):
    log = TrainingLog(str(tmp_path), FIELDS)
    log.add_rows([(s, {"d_loss": s / 10, "g_loss": -s}) for s in steps])
    log.close()
    return tmp_path / "losses.csv"


@pytest.mark.parametrize("tail", [
    "6,0.",                 # cut inside a number: no newline
    "6,0.6,-",              # cut after a separator
    "6,0.6\n",              # a whole line, but a field short
    "6,0.6,-6,0.6,-6\n",    # two rows run together
    "6,0.6,abc\n",          # garbage
])
def test_a_resumed_run_drops_a_torn_row_and_continues_the_log(tmp_path, tail):
    path = logged(tmp_path, range(1, 6))
    with open(path, "a") as f:
        f.write(tail)
    log = TrainingLog(str(tmp_path), FIELDS, resume_step=5)
    assert [row[0] for row in log.rows] == [1, 2, 3, 4, 5]       # read: only whole rows
    log.add_rows([(s, {"d_loss": s / 10, "g_loss": -s}) for s in (6, 7)])
    log.close()
    rows = np.loadtxt(path, delimiter=",", skiprows=1)           # parses: every row whole
    np.testing.assert_array_equal(rows[:, 0], [1, 2, 3, 4, 5, 6, 7])
    np.testing.assert_allclose(rows[:, 1], np.arange(1, 8) / 10)
    assert path.read_text().startswith("step,d_loss,g_loss\n")


def test_a_full_disk_mid_row_leaves_a_torn_tail_that_the_resume_repairs(tmp_path,
                                                                        monkeypatch):
    path = logged(tmp_path, range(1, 4))
    log = TrainingLog(str(tmp_path), FIELDS, resume_step=3)
    real_write = os.write

    def write_half_then_fail(fd, data):
        if not hasattr(write_half_then_fail, "done"):
            write_half_then_fail.done = True
            return real_write(fd, data[:len(data) // 2 + 1])      # the disk fills mid-row
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(fileio.os, "write", write_half_then_fail)
    with pytest.raises(OSError):
        log.add_rows([(s, {"d_loss": 0.5, "g_loss": 0.25}) for s in (4, 5)])
    monkeypatch.setattr(fileio.os, "write", real_write)
    log.close()
    header, rows, torn = read_csv_log(path)
    assert torn and [row[0] for row in rows][:3] == ["1", "2", "3"]
    # the next run resumes from its checkpoint at step 3
    log = TrainingLog(str(tmp_path), FIELDS, resume_step=3)
    log.add(4, {"d_loss": 0.4, "g_loss": -4.0})
    log.close()
    assert read_csv_log(path) == (["step", *FIELDS],
                                  [["1", "0.1", "-1"], ["2", "0.2", "-2"], ["3", "0.3", "-3"],
                                   ["4", "0.4", "-4"]], [])


def test_rows_of_one_interval_go_out_in_one_write(tmp_path, monkeypatch):
    log = TrainingLog(str(tmp_path), FIELDS)
    writes = []
    real_write = os.write
    monkeypatch.setattr(fileio.os, "write", lambda fd, data: writes.append(data) or
                        real_write(fd, data))
    log.add_rows([(s, {"d_loss": 1.0, "g_loss": 2.0}) for s in range(1, 11)])
    monkeypatch.undo()
    log.close()
    assert len(writes) == 1 and writes[0].count(b"\n") == 10 and writes[0].endswith(b"\n")


def test_metrics_csv_keeps_its_empty_fid_cells_and_drops_a_torn_tail(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,swd,fid\n100,52.1,\n200,48.7,31.2\n300,4")
    fields = ["step", "swd", "fid"]
    assert restart_csv(str(path), fields, 300) == [["100", "52.1", ""], ["200", "48.7", "31.2"]]
    fileio.append_csv_rows(str(path), [[300, "47.5", ""]])
    assert path.read_text() == "step,swd,fid\n100,52.1,\n200,48.7,31.2\n300,47.5,\n"


def test_read_csv_log_names_the_torn_lines(tmp_path):
    path = tmp_path / "losses.csv"
    path.write_text("step,a\n1,0.5\n2\n3,0.7\n4,0.")
    header, rows, torn = read_csv_log(str(path))
    assert header == ["step", "a"] and rows == [["1", "0.5"], ["3", "0.7"]]
    assert [number for number, _ in torn] == [3, 5]
    assert "1 fields" in torn[0][1] and "without its newline" in torn[1][1]
    assert read_csv_log(str(tmp_path / "missing.csv")) == (None, [], [])
