from bench.cell import run_job
from bench.train import eval_steps


def test_log_schedule_resolution_and_ends():
    steps = eval_steps(2000, "log", resolution=0.05, min_gap=10)
    assert steps[0] == 0 and steps[-1] == 2000 and steps == sorted(set(steps))
    gaps = [(b - a) / a for a, b in zip(steps[1:], steps[2:]) if a >= 200 and b < 2000]
    assert max(gaps) <= 0.05 + 1 / 200  # relative resolution of a few percent once past min_gap/resolution
    assert len(steps) < 100
    assert eval_steps(100, "every", every=30) == [0, 30, 60, 90, 100]


def test_digits_cell_learns_well_above_chance(cfg_factory):
    cfg = cfg_factory(
        "data=digits", "activation=tanh", "model.batchnorm=false", "data.labeled_fraction=0.1", "train.max_steps=300"
    )
    [result] = run_job(cfg)
    assert result["status"] == "ok"
    assert result["curve"][0]["val_acc"] < 0.3  # chance is 0.1
    assert result["final"]["val_acc"] > 0.7 and result["final"]["test_acc"] > 0.7
    seconds = [p["seconds"] for p in result["curve"]]
    assert seconds == sorted(seconds)


def test_same_config_and_seed_give_identical_curves(cfg_factory, tmp_path):
    runs = []
    for i in range(2):
        cfg = cfg_factory(
            "data=digits", "activation=rrelu", "train.max_steps=60", "init=lsuv", out_dir=tmp_path / f"r{i}"
        )
        [r] = run_job(cfg)
        runs.append([(p["step"], p["val_acc"], p["val_loss"], p["train_loss"]) for p in r["curve"]])
    assert runs[0] == runs[1]
    other = cfg_factory(
        "data=digits", "activation=rrelu", "train.max_steps=60", "init=lsuv", "seed=1", out_dir=tmp_path / "r3"
    )
    [r] = run_job(other)
    assert [(p["step"], p["val_loss"]) for p in r["curve"]] != [(s, vl) for s, _, vl, _ in runs[0]]


def test_exploding_loss_ends_as_diverged_with_the_curve_so_far(cfg_factory):
    cfg = cfg_factory("data=digits", "model.batchnorm=false", "train.lr=1e6", "train.max_steps=200")
    [result] = run_job(cfg)
    assert result["status"] == "diverged" and "loss became" in result["error"]
    assert 0 < len(result["curve"]) and result["final"]["step"] < 200


def test_early_stop_at_target(cfg_factory):
    cfg = cfg_factory("data=digits", "train.max_steps=2000", "train.target_val_acc=0.8")
    [result] = run_job(cfg)
    assert result["curve"][-1]["val_acc"] >= 0.8 and result["final"]["step"] < 2000
    assert all(p["val_acc"] < 0.8 for p in result["curve"][:-1])


def test_bf16_autocast_switch_trains_and_changes_numbers_only_slightly(cfg_factory, tmp_path):
    plain = run_job(cfg_factory("data=digits", "train.max_steps=100", out_dir=tmp_path / "a"))[0]
    bf16 = run_job(cfg_factory("data=digits", "train.max_steps=100", "train.bf16=true", out_dir=tmp_path / "b"))[0]
    assert bf16["status"] == "ok" and bf16["final"]["val_acc"] > 0.8
    assert bf16["curve"][-1]["val_loss"] != plain["curve"][-1]["val_loss"]  # a different computation
    assert bf16["cell_id"] != plain["cell_id"]  # and a different cell
