"""Sweeps: the on-disk cache, resuming an interrupted sweep, tool versions kept apart, CSV rows.

A fake estimator (an exact closed form of the layer) replaces ZigZag, so these tests
are fast; tests/test_zigzag.py runs ZigZag itself on tiny layers.
"""

import json
from pathlib import Path

import pandas as pd
import pytest

from complexity.layer import Layer
from energy_complexity.cli import main
from validation import sweep, zigzag_backend as zz
from validation.grids import BUFFER_SIZES, GRID_NAMES, buffer_grid, grid, standard_grid
from validation.reference_data import read_reference_csv, validate_reference_frame
from validation.sweep import ResultCache, SweepStats, Task, ToolVersionMismatch, records_to_frame, run_sweep


class CountingEstimator:
    """Stands in for zigzag_backend.estimate: energy = 100 (X+W+Y) + F pJ; counts its calls."""

    def __init__(self, fail_after: int | None = None):
        self.calls = []
        self.fail_after = fail_after

    def __call__(self, layer, platform, buffer_words=None, settings=zz.SearchSettings()):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt  # the sweep is killed here
        self.calls.append((layer.c, layer.d, layer.h, platform, buffer_words))
        words = layer.X + layer.W + layer.Y
        return zz.ZigZagResult(energy_pJ=100.0 * words + layer.F, energy_mac_pJ=float(layer.F),
                               energy_memory_pJ=100.0 * words, energy_dram_pJ=100.0 * words,
                               dram_words_X=layer.X, dram_words_W=layer.W, dram_words_Y=layer.Y,
                               cycles=float(layer.F), macs=layer.F, memory_energy_pJ={"dram/X": 100.0 * layer.X})


@pytest.fixture
def fake(monkeypatch):
    est = CountingEstimator()
    monkeypatch.setattr(sweep, "ESTIMATOR", est)
    return est


def _tasks(n=10, platform="tpu_like"):
    return [Task(Layer.conv(c, 8, 6, 3, 1, 1), platform) for c in range(1, n + 1)]


def test_second_run_hits_the_cache(tmp_path, fake):
    tasks = _tasks(6)
    cache = ResultCache(tmp_path)
    first = run_sweep(tasks, cache, progress=False)
    assert len(fake.calls) == 6
    st = SweepStats()
    second = run_sweep(tasks, cache, progress=False, stats=st)
    assert len(fake.calls) == 6  # nothing recomputed
    assert (st.cached, st.computed) == (6, 0)
    assert first == second
    assert cache.count() == 6
    assert [r["energy_pJ"] for r in second] == [100.0 * (t.layer.X + t.layer.W + t.layer.Y) + t.layer.F
                                                 for t in tasks]


def test_interrupted_sweep_resumes_with_only_the_missing_half_computed(tmp_path, monkeypatch):
    tasks = _tasks(10)
    cache = ResultCache(tmp_path)
    killer = CountingEstimator(fail_after=5)
    monkeypatch.setattr(sweep, "ESTIMATOR", killer)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(tasks, cache, progress=False)
    assert cache.count() == 5  # every finished layer was saved
    assert not list(tmp_path.rglob(".tmp-*"))  # no half-written file
    resumed = CountingEstimator()
    monkeypatch.setattr(sweep, "ESTIMATOR", resumed)
    st = SweepStats()
    recs = run_sweep(tasks, cache, progress=False, stats=st)
    assert (st.cached, st.computed) == (5, 5)
    assert sorted(c[0] for c in resumed.calls) == [6, 7, 8, 9, 10]  # exactly the missing half
    assert len(recs) == 10 and all(r["error"] is None for r in recs)


def test_half_then_whole(tmp_path, fake):
    tasks = _tasks(8)
    cache = ResultCache(tmp_path)
    run_sweep(tasks[:4], cache, progress=False)
    run_sweep(tasks, cache, progress=False)
    assert len(fake.calls) == 8
    assert len(set(fake.calls)) == 8


def test_cache_key_separates_platform_buffer_settings_and_version():
    L = Layer.conv(4, 8, 6, 3, 1, 1)
    base = Task(L, "tpu_like")
    keys = {base.key("3.9.1"), Task(L, "eyeriss_like").key("3.9.1"), Task(L, "tpu_like", 4096).key("3.9.1"),
            Task(L, "tpu_like", settings=zz.SearchSettings(lpf_limit=7)).key("3.9.1"), base.key("3.9.2"),
            Task(L.replace(ph=0, pw=0), "tpu_like").key("3.9.1")}
    assert len(keys) == 6
    # the platform's own Buffer and the same size given explicitly are the same estimate
    assert base.key("3.9.1") == Task(L, "tpu_like", base.M).key("3.9.1")


def test_tool_versions_are_kept_apart(tmp_path, fake):
    tasks = _tasks(3)
    run_sweep(tasks, ResultCache(tmp_path, version="3.9.1"), progress=False)
    newer = ResultCache(tmp_path, version="4.0.0")
    st = SweepStats()
    recs = run_sweep(tasks, newer, progress=False, stats=st)
    assert st.computed == 3  # nothing of 3.9.1 was reused
    assert newer.other_versions() == ["3.9.1"]
    assert {r["tool_version"] for r in recs} == {"4.0.0"}


def test_mixing_tool_versions_is_refused(tmp_path, fake):
    a = run_sweep(_tasks(2), ResultCache(tmp_path, version="3.9.1"), progress=False)
    b = run_sweep(_tasks(2), ResultCache(tmp_path, version="4.0.0"), progress=False)
    with pytest.raises(ToolVersionMismatch, match="several zigzag versions"):
        records_to_frame(a + b)


def test_a_cache_file_of_another_version_is_refused(tmp_path, fake):
    t = _tasks(1)[0]
    cache = ResultCache(tmp_path, version="3.9.1")
    run_sweep([t], cache, progress=False)
    path = cache.path(t)
    rec = json.loads(path.read_text())
    rec["tool_version"] = "0.1"
    path.write_text(json.dumps(rec))
    with pytest.raises(ToolVersionMismatch):
        cache.get(t)


def test_rows_pass_the_reference_layout(tmp_path, fake):
    tasks = _tasks(4) + [Task(Layer.fc(32, 16), "eyeriss_like", 2048)]
    df = records_to_frame(run_sweep(tasks, ResultCache(tmp_path), progress=False))
    checked = validate_reference_frame(df)
    assert len(checked) == 5
    assert list(checked["M"]) == [tasks[0].M] * 4 + [2048]
    assert (checked["dram_words"] == checked["dram_words_X"] + checked["dram_words_W"]
            + checked["dram_words_Y"]).all()
    assert set(checked["tool"]) == {"zigzag"} and checked["settings"].str.contains("opt=energy").all()
    # the platform's whole on-chip capacity: tpu_like's own 2 Mi-word Buffer plus 1024 PEs x (128 + 2) words
    assert list(checked["M_onchip"]) == [2097152 + 1024 * 130] * 4 + [2048 + 97920]


def test_provenance_keeps_its_history_section(tmp_path, fake):
    from validation.build_dataset import write_provenance
    df = records_to_frame(run_sweep(_tasks(2), ResultCache(tmp_path), progress=False))
    path = tmp_path / "PROVENANCE.md"
    write_provenance(path, df, {"main": SweepStats(total=2)}, zz.SearchSettings(), "cmd")
    text = path.read_text()
    assert "## History" not in text and "`M_onchip` = M + 133120 words" in text
    path.write_text(text + "\n## History\n\n- first build\n")
    write_provenance(path, df, {"main": SweepStats(total=2, cached=2)}, zz.SearchSettings(), "cmd")
    text = path.read_text()
    assert text.count("## History") == 1 and text.endswith("## History\n\n- first build\n")
    assert "2 tasks, 2 from cache" in text


def test_failed_estimates_are_cached_and_left_out_of_the_csv(tmp_path, monkeypatch):
    calls = []

    def failing(layer, platform, buffer_words=None, settings=None):
        calls.append(layer)
        raise zz.ZigZagError("no valid loop ordering")

    monkeypatch.setattr(sweep, "ESTIMATOR", failing)
    cache = ResultCache(tmp_path)
    st = SweepStats()
    recs = run_sweep(_tasks(2), cache, progress=False, stats=st)
    assert st.failed == 2 and all(r["error"] for r in recs)
    run_sweep(_tasks(2), cache, progress=False)
    assert len(calls) == 2  # a deterministic failure is not retried
    assert len(records_to_frame(recs)) == 0


def test_grids():
    assert len(standard_grid()) == 216
    assert len(buffer_grid()) == 20 and len(BUFFER_SIZES) >= 6
    assert set(GRID_NAMES) >= {"standard", "dataset", "buffer", "tiny", "zoo"}
    shapes = {tuple(v for k, v in l.to_dict().items() if k != "name") for _, l in grid("dataset")}
    assert len(shapes) == len(grid("dataset")) >= 300  # distinct layers


# ----- the command line, with the fake estimator ------------------------------------

def _cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_single_layer_json_and_cache(tmp_path, fake, capsys):
    argv = ["reference", "run", "--platform", "eyeriss_like", "--c", "4", "--d", "8", "--hw", "6", "--k", "3",
            "--pad", "1", "--json", "--cache", str(tmp_path)]
    code, out, err = _cli(argv, capsys)
    assert code == 0, err
    obj = json.loads(out)
    L = Layer.conv(4, 8, 6, 3, 1, 1)
    assert obj["energy_pJ"] == 100.0 * (L.X + L.W + L.Y) + L.F and obj["M"] == 1048576
    code, out2, err2 = _cli(argv, capsys)
    assert out2 == out and len(fake.calls) == 1 and "1 from cache" in err2


def test_cli_csv_of_layers_to_reference_csv(tmp_path, fake, capsys):
    layers = tmp_path / "layers.csv"
    pd.DataFrame([{"c": 8, "d": 16, "hw": 14, "k": 3, "pad": 1, "name": "a"},
                  {"c": 16, "d": 16, "hw": 7, "k": 1, "name": "b"}]).to_csv(layers, index=False)
    out = tmp_path / "ref.csv"
    code, _, err = _cli(["reference", "run", "--platform", "tpu_like,simba_like", "--csv", str(layers),
                         "--buffer-words", "4096,65536", "--out", str(out), "--cache", str(tmp_path / "c"),
                         "--no-progress", "--jobs", "1"], capsys)
    assert code == 0, err
    df = read_reference_csv(out)
    assert len(df) == 8 and sorted(set(df["M"])) == [4096, 65536]
    assert set(df["layer_name"]) == {"a", "b"}


def test_cli_refuses_to_append_another_tool_version(tmp_path, fake, capsys, monkeypatch):
    out = tmp_path / "ref.csv"
    base = ["reference", "run", "--platform", "tpu_like", "--c", "4", "--d", "8", "--hw", "1", "--k", "1",
            "--out", str(out),
            "--cache", str(tmp_path / "c")]
    assert _cli(base, capsys)[0] == 0
    monkeypatch.setattr(zz, "tool_version", lambda: "9.9.9")
    code, _, err = _cli(base + ["--append"], capsys)
    errors = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and len(errors) == 1 and "refusing to mix tool versions" in errors[0]
    assert set(read_reference_csv(out)["tool_version"].astype(str)) == {zz.importlib.metadata.version("zigzag-dse")}


@pytest.mark.parametrize("argv, needle", [
    (["--platform", "nope", "--c", "4", "--d", "4"], "unknown platform 'nope'"),
    (["--platform", "tpu_like", "--grid", "nope"], "unknown grid 'nope'"),
    (["--platform", "tpu_like", "--c", "4", "--d", "4", "--buffer-words", "0"], "--buffer-words"),
    (["--platform", "tpu_like", "--grid", "tiny", "--c", "4"], "do not also give layer flags"),
    (["--platform", "tpu_like", "--csv", "/nonexistent.csv"], "no such file"),
    (["--platform", "tpu_like", "--d", "4"], "--c is required"),
    (["--platform", "tpu_like", "--c", "4", "--d", "4", "--hw", "2", "--k", "3"], "kernel"),
])
def test_cli_bad_input_is_one_line(argv, needle, capsys, fake):
    code, out, err = _cli(["reference", "run"] + argv, capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


SIMBA_STATS = Path(__file__).resolve().parent / "data" / "timeloop" / "simba_like-alexnet_conv3.stats.txt"


def test_cli_import_timeloop(tmp_path, capsys):
    from validation.timeloop import read_timeloop_stats
    out = tmp_path / "tl.csv"
    code, _, err = _cli(["reference", "import-timeloop", str(SIMBA_STATS), "--platform", "simba_like",
                         "--M", "65536", "--c", "256", "--d", "384", "--hw", "13", "--k", "3", "--pad", "1",
                         "--out", str(out)], capsys)
    assert code == 0, err
    df = read_reference_csv(out)
    stats = read_timeloop_stats(SIMBA_STATS)
    assert df["energy_pJ"].iloc[0] == pytest.approx(stats.energy_sum_pJ)
    assert df["dram_words"].iloc[0] == stats.dram_words_total and df["tool"].iloc[0] == "timeloop"
    # the wrong layer (MAC count differs from Timeloop's computes) is a one-line error
    code, _, err = _cli(["reference", "import-timeloop", str(SIMBA_STATS), "--platform", "simba_like",
                         "--M", "65536", "--c", "128", "--d", "384", "--hw", "13", "--k", "3", "--pad", "1"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1


# ----- Ctrl-C: one line, exit 130, everything finished stays cached, the resume says what it reuses ------

def _layers_csv(path, n):
    pd.DataFrame([{"c": c, "d": 8, "hw": 6, "k": 3, "pad": 1} for c in range(1, n + 1)]).to_csv(path, index=False)
    return path


def test_interrupt_is_one_line_with_the_resume_command_and_exit_130(tmp_path, capsys, monkeypatch):
    import shlex
    csv = _layers_csv(tmp_path / "layers.csv", 8)
    cache = tmp_path / "cache"
    monkeypatch.setattr(sweep, "ESTIMATOR", CountingEstimator(fail_after=3))
    code, out, err = _cli(["reference", "run", "--platform", "tpu_like", "--csv", str(csv), "--cache", str(cache),
                           "--no-progress"], capsys)
    version = zz.tool_version()
    resume = f"energy-complexity reference run --platform tpu_like --csv {csv} --cache {cache} --no-progress"
    assert code == 130 and out == ""
    assert err.splitlines() == ["8 estimates: 0 from cache, 8 to compute",
                                f"interrupted: 3 of 8 estimates are cached in {cache}/zigzag-{version}; "
                                f"resume with: {resume}"]
    assert ResultCache(cache).count() == 3
    # the printed command resumes: it says what it reuses before computing only the rest
    resumed = CountingEstimator()
    monkeypatch.setattr(sweep, "ESTIMATOR", resumed)
    code, out, err = _cli(shlex.split(err.splitlines()[-1].split("resume with: ")[1])[1:], capsys)
    assert code == 0 and err.splitlines()[0] == "8 estimates: 3 from cache, 5 to compute"
    assert sorted(c[0] for c in resumed.calls) == [4, 5, 6, 7, 8]
    assert len(pd.read_csv(__import__("io").StringIO(out))) == 8


def test_interrupt_without_cache_says_nothing_was_kept(tmp_path, capsys, monkeypatch):
    csv = _layers_csv(tmp_path / "layers.csv", 4)
    monkeypatch.setattr(sweep, "ESTIMATOR", CountingEstimator(fail_after=2))
    code, _, err = _cli(["reference", "run", "--platform", "tpu_like", "--csv", str(csv), "--no-cache",
                         "--no-progress"], capsys)
    assert code == 130 and err.splitlines()[-1] == (
        "interrupted: 2 of 4 estimates were computed but not kept (--no-cache); rerun without --no-cache to make "
        "the sweep resumable")


def test_interrupt_of_parallel_workers_in_process(tmp_path, monkeypatch):
    """jobs=2 on joblib's threading backend: the worker's KeyboardInterrupt reaches run_sweep, counted from disk."""
    from joblib import parallel_backend
    killer = CountingEstimator(fail_after=4)
    monkeypatch.setattr(sweep, "ESTIMATOR", killer)
    cache = ResultCache(tmp_path)
    st = SweepStats()
    with parallel_backend("threading", n_jobs=2), pytest.raises(sweep.SweepInterrupted) as info:
        run_sweep(_tasks(10), cache, jobs=2, progress=False, stats=st)
    assert info.value.distinct == 10 and info.value.cached == cache.count() == len(killer.calls) >= 4
    assert st.to_compute == 10 and not list(tmp_path.rglob(".tmp-*"))
    seen = []
    st2 = SweepStats()
    monkeypatch.setattr(sweep, "ESTIMATOR", CountingEstimator())
    with parallel_backend("threading", n_jobs=2):
        run_sweep(_tasks(10), cache, jobs=2, progress=False, stats=st2, on_plan=lambda s: seen.append(
            (s.cached, s.to_compute, s.computed)))
    assert seen == [(info.value.cached, 10 - info.value.cached, 0)] and cache.count() == 10


_SLOW_RUN = '''
import sys, time
from validation import sweep, zigzag_backend as zz
from energy_complexity.cli import main

def slow(layer, platform, buffer_words=None, settings=None):
    time.sleep(0.1)
    w = layer.X + layer.W + layer.Y
    return zz.ZigZagResult(energy_pJ=100.0 * w + layer.F, energy_mac_pJ=float(layer.F), energy_memory_pJ=100.0 * w,
                           energy_dram_pJ=100.0 * w, dram_words_X=layer.X, dram_words_W=layer.W,
                           dram_words_Y=layer.Y, cycles=float(layer.F), macs=layer.F, memory_energy_pJ={})

sweep.ESTIMATOR = slow
raise SystemExit(main(sys.argv[1:]))
'''


def test_ctrl_c_on_a_two_worker_sweep(tmp_path):
    """A real SIGINT to the whole process group (as a terminal sends it) with joblib's process workers."""
    import os
    import signal
    import subprocess
    import sys
    import time
    script = tmp_path / "run.py"
    script.write_text(_SLOW_RUN)
    csv = _layers_csv(tmp_path / "layers.csv", 40)
    cache = tmp_path / "cache"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, str(script), "reference", "run", "--platform", "tpu_like", "--csv",
                             str(csv), "--cache", str(cache), "--jobs", "2", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while ResultCache(cache).count() < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    lines = err.splitlines()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(lines) == 2, err
    assert lines[0] == "40 estimates: 0 from cache, 40 to compute"
    n = ResultCache(cache).count()
    assert 2 <= n < 40
    assert lines[1].startswith(f"interrupted: {n} of 40 estimates are cached in {cache}/zigzag-")
    assert lines[1].endswith(f"resume with: energy-complexity reference run --platform tpu_like --csv {csv} "
                             f"--jobs 2 --cache {cache} --no-progress")
