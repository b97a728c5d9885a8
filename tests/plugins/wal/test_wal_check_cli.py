"""``distcache check-wal`` as an operator runs it."""

from __future__ import annotations

from pathlib import Path

from .test_wal_recovery import model_after, only_segment, record_ends, recover, write_log


def test_check_wal_reports_damage_and_repair_keeps_the_prefix(tmp_path: Path, cli) -> None:
    data_dir = tmp_path / "data"
    history = write_log(data_dir, 50)
    wal_dir = data_dir / "wal"
    done = cli("check-wal", str(wal_dir))
    assert done.returncode == 0, done.stderr
    assert "50 records" in done.stdout and done.stdout.rstrip().endswith("OK")

    segment = only_segment(data_dir)
    ends = record_ends(segment)
    bad_offset = ends[19]  # the 21st record
    data = bytearray(segment.read_bytes())
    data[bad_offset + 30] ^= 0x04
    segment.write_bytes(bytes(data))

    done = cli("check-wal", str(wal_dir))
    assert done.returncode == 1
    assert f"CORRUPT at offset {bad_offset} (checksum mismatch)" in done.stdout

    done = cli("check-wal", str(segment), "--repair")  # one file works too
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"truncated at offset {bad_offset}" in done.stdout
    assert recover(data_dir)[0] == model_after(history, 20)
    assert cli("check-wal", str(wal_dir)).returncode == 0


def test_check_wal_on_a_torn_tail_exits_0_and_says_so(tmp_path: Path, cli) -> None:
    data_dir = tmp_path / "data"
    write_log(data_dir, 5)
    segment = only_segment(data_dir)
    segment.write_bytes(segment.read_bytes()[:-7])
    done = cli("check-wal", str(data_dir / "wal"))
    assert done.returncode == 0
    assert "torn tail at offset" in done.stdout and "torn tail only" in done.stdout


def test_check_wal_on_something_else(tmp_path: Path, cli) -> None:
    done = cli("check-wal", str(tmp_path / "missing"))
    assert done.returncode == 2 and "no such file" in done.stdout
