import json
from pathlib import Path

import pytest

from bench.cell import run_job
from bench.results import load_results, read_result, result_path, write_result


def test_result_file_has_the_design_fields(cfg_factory):
    cfg = cfg_factory("data=digits", "train.max_steps=20", "n_seeds=2")
    written = run_job(cfg)
    assert len(written) == 2 and written[0]["cell_id"] != written[1]["cell_id"]
    r = read_result(result_path(cfg.out_dir, written[0]["cell_id"]))
    for key in (
        "schema",
        "cell_id",
        "status",
        "error",
        "axes",
        "config",
        "init_cost",
        "curve",
        "final",
        "env",
        "started_at",
        "finished_at",
    ):
        assert key in r
    assert r["axes"] == {
        "dataset": "digits",
        "model": "mlp",
        "init": "random",
        "activation": "relu",
        "batchnorm": True,
        "labeled_fraction": 1.0,
        "lr": 0.05,
        "seed": 0,
    }
    assert r["config"]["seed"] == 0 and r["config"]["train"]["max_steps"] == 20
    assert set(r["env"]) >= {"python", "torch", "device", "device_name", "threads", "git_sha", "git_dirty"}
    cells, curves, problems = load_results(cfg.out_dir)
    assert len(cells) == 2 and not problems
    assert set(curves["cell_id"]) == set(cells["cell_id"])
    assert len(curves) == sum(len(w["curve"]) for w in written)


def test_rerun_skips_existing_cells_and_force_reruns(cfg_factory):
    cfg = cfg_factory("data=digits", "train.max_steps=20")
    [first] = run_job(cfg)
    assert run_job(cfg) == []
    cfg.force = True
    [again] = run_job(cfg)
    assert again["cell_id"] == first["cell_id"] and again["started_at"] != first["started_at"]


def test_cell_id_changes_with_any_setting_that_changes_numbers(cfg_factory):
    from bench.identity import cell_id

    base = cfg_factory("data=digits")
    assert cell_id(base, 0) == cell_id(cfg_factory("data=digits", "force=true", "device=cpu"), 0)
    for override in ("train.lr=0.1", "init=lsuv", "model.width=64", "data.seed=3", "train.max_steps=5"):
        assert cell_id(cfg_factory("data=digits", override), 0) != cell_id(base, 0), override
    assert cell_id(base, 0) != cell_id(base, 1)


def test_a_jobs_cell_ids_hash_each_cells_stored_config(cfg_factory):
    """cell_ids resolves each of a job's configs once (one per learning rate) for all its seeds: every id
    is still the readable name of that cell's axes plus the hash of the settings in its own stored config."""
    from bench.identity import cell_config, cell_ids, digest, job_cells, semantic_config

    cells = job_cells(cfg_factory("data=digits", "train.lrs=[0.02,0.1]", "n_seeds=3", "seed=4"))
    ids = cell_ids(cells)
    assert len(set(ids)) == len(cells) == 6
    for (c, s), cid in zip(cells, ids):
        stored = cell_config(c, s)
        assert stored["seed"] == s and cid.endswith(
            f"-lr{stored['train']['lr']:g}-s{s}-{digest(semantic_config(stored))}"
        )


def test_loader_names_bad_files_and_keeps_the_rest(cfg_factory):
    cfg = cfg_factory("data=digits", "train.max_steps=20")
    [good] = run_job(cfg)
    text = result_path(cfg.out_dir, good["cell_id"]).read_text()
    cells_dir = result_path(cfg.out_dir, good["cell_id"]).parents[1]
    bad = {"truncated": text[: len(text) // 2], "notjson": "hello", "future": json.dumps({**good, "schema": 99})}
    for name, content in bad.items():
        (cells_dir / name).mkdir()
        (cells_dir / name / "result.json").write_text(content)
    cells, _, problems = load_results(cfg.out_dir)
    assert list(cells["cell_id"]) == [good["cell_id"]]
    assert len(problems) == 3
    for name in bad:
        assert any(f"/{name}/result.json" in p for p in problems)
    assert any("schema version 99" in p for p in problems)


def test_write_is_atomic_no_temp_files_left(tmp_path):
    path = tmp_path / "c" / "result.json"
    write_result(path, {"a": 1})
    write_result(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]
    with pytest.raises(TypeError):
        write_result(path, {"a": object()})  # a failed write leaves the old file whole
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]


def test_missing_results_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_results(tmp_path / "nope")


def test_failing_cell_is_recorded_and_reruns_next_time(cfg_factory):
    cfg = cfg_factory("data=digits", "train.max_steps=20", "fail_on=digits")
    [r] = run_job(cfg)
    assert r["status"] == "failed" and "deliberate" in r["error"] and "Traceback" in r["traceback"]
    cfg.fail_on = None
    [r2] = run_job(cfg)  # a failed cell is not 'done': the next run retries it
    assert r2["status"] == "ok"


OLD_SCHEMA_KEYS = {  # what an older schema's config carried that the current one leaves out
    1: ("init", {"noise": 0.2, "steps_per_layer": 300}),  # one flat init config: every strategy's keys
    2: ("data", {"size": 5000, "root": "data", "download": False}),  # one data config for every dataset
}


@pytest.mark.parametrize("old_schema", sorted(OLD_SCHEMA_KEYS))
def test_older_schema_cells_are_read_but_never_pooled_with_current_ones(cfg_factory, old_schema):
    """A result of an older schema is still read; the report's configuration split keeps it apart from
    current cells of the same axes, and a folder recorded as an older schema refuses current cells
    unless append=true."""
    from bench.analysis.metrics import one_configuration
    from bench.results import SCHEMA, ExperimentMismatch, check_experiment

    assert old_schema < SCHEMA
    cfg = cfg_factory("data=digits", "train.max_steps=20", "n_seeds=3")
    written = run_job(cfg)
    old = read_result(result_path(cfg.out_dir, written[0]["cell_id"]))
    old["schema"] = old_schema
    group, extra = OLD_SCHEMA_KEYS[old_schema]
    old["config"][group].update(extra)
    old["cell_id"] = old["cell_id"] + f"-v{old_schema}"
    write_result(result_path(cfg.out_dir, old["cell_id"]), old)
    cells, _, problems = load_results(cfg.out_dir)
    assert not problems and len(cells) == 4
    kept, left_out, keys = one_configuration(cells)
    assert list(left_out["cell_id"]) == [old["cell_id"]] and "result_schema" in keys

    # a v1 record has no schema field; later ones name theirs
    record = {"settings": {}} if old_schema == 1 else {"schema": old_schema, "settings": {}}
    (Path(cfg.out_dir) / "experiment.json").write_text(json.dumps(record))
    with pytest.raises(ExperimentMismatch, match=f"holds results of schema {old_schema}"):
        check_experiment(cfg.out_dir, [{}])
    check_experiment(cfg.out_dir, [{"train.max_steps": 20}], append=True)
    assert json.loads((Path(cfg.out_dir) / "experiment.json").read_text())["schema"] == old_schema  # kept
