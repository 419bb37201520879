from pathlib import Path

import pytest
from omegaconf.errors import ConfigKeyError

from bench.config import ACTIVATIONS, DATASETS, INITS, ConfigError, validate
from tests.conftest import ROOT, make_cfg, run_bench, run_cli


def test_defaults_compose_and_validate():
    cfg = make_cfg([])
    validate(cfg)
    assert (cfg.data.name, cfg.model.name, cfg.init.name, cfg.activation.name) == ("mnist5k", "mlp", "random", "relu")
    assert cfg.out_dir == "results/runs"


@pytest.mark.parametrize("group,options", [("init", INITS), ("activation", ACTIVATIONS), ("data", DATASETS)])
def test_every_group_option_composes(group, options):
    for option in options:
        cfg = make_cfg([f"{group}={option}"])
        validate(cfg)
        assert cfg[group].name == option


def test_sweep_presets_compose():
    for preset in sorted(p.stem for p in (ROOT / "bench" / "conf" / "sweep").glob("*.yaml")):
        cfg = make_cfg(
            [f"sweep={preset}"],
        )
        assert cfg.name == preset
        validate(cfg)


@pytest.mark.parametrize(
    "override,key",
    [
        ("data.labeled_fraction=1.5", "data.labeled_fraction"),
        ("data.labeled_fraction=0", "data.labeled_fraction"),
        ("train.lr=-0.1", "train.lr"),
        ("train.max_steps=0", "train.max_steps"),
        ("train.batch_size=0", "train.batch_size"),
        ("train.optimizer=lbfgs", "train.optimizer"),
        ("init.scheme=uniformish", "init.scheme"),
        ("model.name=transformer", "model"),
        ("data.name=imagenet", "data"),
        ("device=tpu", "device"),
    ],
)
def test_bad_values_name_the_key(override, key):
    with pytest.raises(ConfigError) as e:
        validate(make_cfg([override]))
    assert e.value.key == key
    assert override.split("=")[1] in str(e.value) or repr(e.value.value) in str(e.value)


def test_batch_larger_than_labeled_set_is_rejected():
    with pytest.raises(ConfigError, match="labeled set"):
        validate(make_cfg(["train.batch_size=64", "data.labeled_fraction=0.01"]))  # mnist5k at 1%: 40 labels


def test_typo_in_key_is_a_composition_error():
    with pytest.raises(Exception) as e:
        make_cfg(["data.labeld_fraction=0.1"])
    assert "labeld_fraction" in str(e.value) or isinstance(e.value.__cause__, ConfigKeyError)


BAD_INPUT = [
    (["init=nonsense"], "init/nonsense"),
    (["data.labeled_fraction=1.5"], "data.labeled_fraction=1.5"),
    (["data.labeld_fraction=0.5"], "labeld_fraction"),
    (["activation=swish"], "activation/swish"),
    (["hydra/launcher=nope"], "hydra/launcher/nope"),
    (["sweep=smoke", "data.labeled_fraction=0.1,1.5"], "data.labeled_fraction=1.5"),
    (["sweep=smoke", "init=random,magic"], "init/magic"),
    (["sweep=smoke", "train.max_steps=0"], "train.max_steps=0"),
    (["sweep=smoke", "train.batch_size=-4"], "train.batch_size=-4"),
]


def assert_one_line_error(r, needle: str, results_root: Path) -> None:
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert needle in lines[0] and lines[0].startswith("bench: error:")
    assert not any(Path(results_root).rglob("result.json"))  # nothing trained


@pytest.mark.parametrize("args,needle", BAD_INPUT)
def test_cli_bad_input_is_one_line_and_nonzero(args, needle, tmp_path):
    assert_one_line_error(run_bench(*args, f"results_root={tmp_path}"), needle, tmp_path)  # in this process


@pytest.mark.parametrize("args,needle", [BAD_INPUT[i] for i in (0, 5)])
def test_cli_bad_input_in_a_new_process_is_one_line_and_nonzero(args, needle, tmp_path):
    # a group option that does not exist, and a bad value in a sweep (caught by its preflight), each in a
    # process of its own: what only a new process shows would be a second line here
    assert_one_line_error(run_cli(*args, f"results_root={tmp_path}"), needle, tmp_path)


def test_typo_in_a_config_file_is_one_line(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mine.yaml").write_text("name: digits\nlabeled_fractoin: 0.1\n")
    r = run_cli(f"hydra.searchpath=[file://{tmp_path}]", "data=mine", f"results_root={tmp_path}")
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "labeled_fractoin" in lines[0] and "labeled_fraction" in lines[0], r.stderr


def test_an_option_file_that_does_not_extend_its_schema_is_one_line(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "bare.yaml").write_text("name: digits\n")  # no defaults: [schema_digits, _self_]
    r = run_cli(f"hydra.searchpath=[file://{tmp_path}]", "data=bare", f"results_root={tmp_path}")
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "lacks test_fraction" in lines[0] and "schema_digits" in lines[0]


def test_a_cell_id_hashes_only_what_its_dataset_reads():
    from bench.identity import cell_config, cell_id

    mnist5k = cell_config(make_cfg(["data=mnist5k"]), 0)["data"]
    assert "test_fraction" in mnist5k and not {"size", "root", "download"} & set(mnist5k)
    assert "size" in cell_config(make_cfg(["data=mnist1d"]), 0)["data"]
    assert "root" in cell_config(make_cfg(["data=cifar10"]), 0)["data"]
    # what a dataset reads changes the id; where its files lie does not
    assert cell_id(make_cfg(["data=mnist1d", "data.size=300"]), 0) != cell_id(make_cfg(["data=mnist1d"]), 0)
    a, b = make_cfg(["data=mnist", "data.root=a"]), make_cfg(["data=mnist", "data.root=b", "data.download=true"])
    assert cell_id(a, 0) == cell_id(b, 0)


def test_loading_never_unpickles_untrusted_files():
    """Every torch.load passes weights_only=True; no pickle.load or np.load(allow_pickle=True) in bench/."""
    import ast

    for path in (ROOT / "bench").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = getattr(node.func.value, "id", None)
                kwargs = {k.arg: getattr(k.value, "value", None) for k in node.keywords}
                where = f"{path.name}:{node.lineno}"
                if (owner, node.func.attr) == ("torch", "load"):
                    assert kwargs.get("weights_only") is True, where
                if (owner, node.func.attr) in {("pickle", "load"), ("pickle", "loads")}:
                    raise AssertionError(f"pickle.load in {where}")
                if (owner, node.func.attr) == ("np", "load"):
                    assert kwargs.get("allow_pickle") is False, where


def test_help_names_every_option_and_preset():
    """The --help template is written out by hand (Hydra's own listing would show the schema_* entries):
    every option file under bench/conf must appear in it, and no schema entry."""
    result = run_cli("--help")
    assert result.returncode == 0
    text = result.stdout
    conf = ROOT / "bench" / "conf"
    for group in ("data", "model", "activation", "init", "train", "report", "sweep", "logger"):
        for option in sorted(p.stem for p in (conf / group).glob("*.yaml")):
            assert option in text, f"{group}={option} is missing from --help"
    assert "schema_" not in text and text.count("bench ") >= 3  # three example commands


def test_a_sweeps_jobs_compose_as_hydra_composes_them():
    """The preflight composes each distinct set of group choices once and sets a job's plain values onto a
    copy (bench.sweep.grid.JobComposer): every job equals Hydra's own composition of it, and a value Hydra
    rejects fails with Hydra's own error."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import ConfigCompositionException
    from omegaconf import OmegaConf

    from bench.sweep.grid import JobComposer, expand_grid

    # a preset's value (train.max_steps: 40) overridden, a list, a value inside a chosen group, another group
    task = ["sweep=smoke", "init=lsuv,autoencoder_short", "init.cache=false", "train.max_steps=7"]
    task += ["model.width=16", "train.lrs=[0.01,0.02]", "data.labeled_fraction=0.5,1.0", "activation=tanh"]
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="bench.conf", version_base="1.3"):
        config = compose(config_name="config", overrides=["sweep=smoke"], return_hydra_config=True)
        config.hydra.overrides.task = task
        compose_job = JobComposer(config)
        jobs = expand_grid(config)
        assert len(jobs) == 8
        for job in jobs:
            hydras = compose(config_name="config", overrides=job)
            assert OmegaConf.to_yaml(compose_job(job)) == OmegaConf.to_yaml(hydras), job
        assert len(compose_job.bases) == 2  # one composition per init, not one per job
        for bad in (["train.max_steps=abc"], ["train.max_stepz=3"], ["init=lsuv", "init.noise=0.1"]):
            with pytest.raises(ConfigCompositionException) as ours:
                compose_job(bad)
            with pytest.raises(ConfigCompositionException) as theirs:
                compose(config_name="config", overrides=bad)
            assert str(ours.value) == str(theirs.value)
    GlobalHydra.instance().clear()


def test_full_preset_runs_the_rbm_arm_on_the_mlp_and_refuses_it_on_the_cnn():
    """sweep=full is a CNN grid and init=rbm pretrains fully connected layers only: sweep=full_mlp is the same
    grid on the MLP with the RBM among the inits; on the CNN the RBM is refused before any work."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from bench.sweep.grid import JobComposer, expand_grid

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="bench.conf", version_base="1.3"):
        full = expand_grid(compose(config_name="config", overrides=["sweep=full"], return_hydra_config=True))
        config = compose(config_name="config", overrides=["sweep=full_mlp"], return_hydra_config=True)
        jobs = expand_grid(config)
        rbm_jobs = [job for job in jobs if "init=rbm" in job]
        assert len(full) == 504 and len(jobs) == 630 and len(rbm_jobs) == 126
        compose_job = JobComposer(config)
        for data in ("mnist", "fashion_mnist", "cifar10"):
            cfg = compose_job(next(job for job in rbm_jobs if f"data={data}" in job))
            validate(cfg)
            assert (cfg.model.name, cfg.init.name, cfg.name) == ("mlp", "rbm", "full_mlp")
            assert list(cfg.train.lrs) == [0.01, 0.03, 0.1] and cfg.train.max_steps == 5000  # full's protocol
    GlobalHydra.instance().clear()
    with pytest.raises(ConfigError) as e:
        validate(make_cfg(["sweep=full", "init=rbm"]))
    assert (e.value.key, e.value.value) == ("model", "cnn")


def test_datasets_module_does_not_import_the_config_module_back():
    """bench.config reads bench.datasets' registry; datasets.py importing bench.config back (for a type hint and,
    lazily, in each error path) made a cycle. No import of it anywhere in the module, at any depth."""
    import ast

    tree = ast.parse((ROOT / "bench" / "datasets.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "bench.config" not in imported and "bench.config_error" in imported


def test_an_equal_compute_rival_is_an_arm_of_the_same_experiment_and_plain_cells_keep_their_ids():
    """lsuv_long shares its folder's settings with lsuv (its budget's keys are its own, named with its
    pretraining), and is named apart; a cell without it hashes as a result written before the key existed."""
    from bench.identity import (
        cell_axes,
        cell_config,
        cell_id,
        conflicts,
        digest,
        experiment_settings,
        semantic_config,
    )

    plain, long = make_cfg(["init=lsuv"]), make_cfg(["init=lsuv_long"])
    assert cell_axes(plain, 0)["init"] == "lsuv" and cell_axes(long, 0)["init"] == "lsuv_long"
    shared, with_budget = experiment_settings(cell_config(plain, 0)), experiment_settings(cell_config(long, 0))
    assert conflicts(shared, with_budget) == {}
    assert set(with_budget) - set(shared) == {
        k for k in with_budget if k.startswith("train.match_compute[autoencoder].")
    }
    assert with_budget["train.match_compute[autoencoder].steps_per_layer"] == 400
    before = cell_config(plain, 0)
    before["train"] = {k: v for k, v in before["train"].items() if k != "match_compute"}
    assert cell_id(plain, 0).endswith(digest(semantic_config(before)))
    assert cell_id(long, 0) != cell_id(plain, 0)


@pytest.mark.parametrize(
    "override,key",
    [
        ("train.match_compute.steps_per_layer=0", "train.match_compute.steps_per_layer"),
        ("train.match_compute.name=lsuv", "train.match_compute.name"),
    ],
)
def test_an_equal_compute_rivals_pretraining_options_are_checked_under_their_own_key(override, key):
    with pytest.raises(ConfigError) as e:
        validate(make_cfg(["init=lsuv_long", override]))
    assert e.value.key == key
    assert "autoencoder, rbm" in str(e.value) or "must be" in str(e.value)
