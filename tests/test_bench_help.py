"""The benchmarks' --help lists every flag they take: bench_families' own (--out, --arms, ...)
as well as the quality benchmarks' shared ones (--steps, --seeds, --families)."""
import pytest


def test_bench_families_help_lists_its_own_flags_and_the_shared_ones(capsys):
    from benchmarks import bench_families
    with pytest.raises(SystemExit) as stop:
        bench_families.main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--out", "--arms", "--arm ", "--channel-base", "--first-seed", "--data",
                 "--table", "--transform-stats", "--steps", "--seeds", "--families"):
        assert flag in text, flag
    # its --families default is its own three families, as the runs take them
    assert "sl-stylegan,dcgan,stylegan2" in text
