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


def test_bench_families_train_images_keeps_pairs_whole_and_the_scoring_sets(tmp_path):
    from benchmarks.bench_families import split_pairs
    for k in range(30):
        for side in "ab":
            (tmp_path / f"patch{k:03d}{side}.png").write_bytes(b"")
    full = split_pairs(str(tmp_path), held_out=10)
    few = split_pairs(str(tmp_path), held_out=10, train_images=17)
    # held-out and floor sets are the same with or without the limit
    assert few["held_out"] == full["held_out"] and few["floor"] == full["floor"]
    names = [p.rsplit("/", 1)[-1] for p in few["train"]]
    assert len(names) == 18                        # 8 pairs are 16 < 17, a 9th pair is 18
    assert set(few["train"]) < set(full["train"])
    stems = {n[:-5] for n in names}                # patchNNN
    assert all(f"{s}a.png" in names and f"{s}b.png" in names for s in stems)


def test_bench_families_budget_line_names_the_one_arm_given(tmp_path, monkeypatch):
    from benchmarks import bench_families
    budgets = []
    monkeypatch.setattr(bench_families, "run_in_tempdir",
                        lambda name, budget, body: budgets.append(budget))
    out = tmp_path / "fam.jsonl"
    out.write_text("")
    common = ["--out", str(out), "--data", str(tmp_path), "--families", "sl-stylegan",
              "--seeds", "2", "--steps", "10"]
    bench_families.main(common + ["--arm", "ada rank"])
    bench_families.main(common + ["--arms", "three"])
    assert "arm 'ada rank' (2 runs)" in budgets[0] and "arms 'default'" not in budgets[0]
    assert "arms 'three' (6 runs)" in budgets[1]
