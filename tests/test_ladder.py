"""The ladder: its preset expands to the rungs it promises, its report's rows cover every arm, and the matrix,
the positive control, the stop sentence and the claims are computed right on hand-built cells."""

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf, read_write

from bench.analysis import Analysis
from bench.analysis import ladder as ladder_numbers
from bench.analysis.folder import compare
from bench.analysis.metrics import Target
from bench.config import LadderRow, validate
from bench.identity import cell_axes, cell_ids, job_cells
from bench.report import ladder
from bench.report.measure_sections import lr_edge_section
from tests.conftest import make_cfg


def ladder_jobs() -> list[list[str]]:
    from bench.sweep.grid import expand_grid

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="bench.conf", version_base="1.3"):
        config = compose(config_name="config", overrides=["sweep=ladder"], return_hydra_config=True)
        jobs = expand_grid(config)
    GlobalHydra.instance().clear()
    return jobs


def test_the_ladder_preset_trains_every_rung_at_two_depths_three_fractions_and_a_wide_lr_grid():
    jobs = ladder_jobs()
    assert len(jobs) == 22 * 2 * 3
    cfg = make_cfg(jobs[0])
    validate(cfg)
    lrs = sorted(cfg.train.lrs)
    assert len(lrs) >= 4 and lrs[-1] / lrs[0] >= 30  # at least 4 log-spaced values over at least 30x
    steps = np.array(lrs[1:]) / np.array(lrs[:-1])
    assert np.all((steps > 2.5) & (steps < 4))  # log-spaced: 1-3-10, each about half a decade
    assert cfg.n_seeds >= 10
    axes = set()
    for job in jobs:
        c = make_cfg(job)
        a = cell_axes(c, 0)
        axes.add((a["model"], a["activation"], a["batchnorm"], a["init"]))
        if a["init"] == "random":  # the plain init of the era for every rung's random baseline
            assert c.init.scheme == "xavier_gain"
        if a["init"] == "autoencoder":  # pretraining starts from that same plain init
            assert c.init.base_scheme == "xavier_gain"
    assert {m for m, *_ in axes} == {"mlp", "deep_mlp"}
    # rung 0: sigmoid and tanh without BN; rung 1: ReLU; rung 2: + BN; rung 3: + LSUV / Krähenbühl (both forms)
    for act in ("sigmoid", "tanh", "relu"):
        assert ("deep_mlp", act, False, "random") in axes and ("deep_mlp", act, False, "autoencoder") in axes
    for init in ("random", "autoencoder", "lsuv", "krahenbuhl", "krahenbuhl_kmeans"):
        assert ("deep_mlp", "relu", True, init) in axes
    for act in ("maxout", "leaky_relu"):
        assert ("deep_mlp", act, True, "lsuv") in axes and ("deep_mlp", act, True, "autoencoder") in axes
    # the RBM stack wherever the autoencoder is tried (issue #28), and the equal-compute rival at rung 3
    pretrained = {(m, act, bn) for m, act, bn, init in axes if init == "autoencoder"}
    assert pretrained == {(m, act, bn) for m, act, bn, init in axes if init == "rbm"}
    assert ("deep_mlp", "relu", True, "lsuv_long") in axes and ("mlp", "relu", True, "lsuv_long") in axes


def test_every_arm_of_the_ladder_belongs_to_a_row_of_its_report():
    """Each sweep arm is a baseline of some report row, a pretraining on top of one, or the equal-compute arm of a
    row's baseline: no arm is trained and then never compared, and no row names a baseline the sweep does not
    train."""
    cfg = make_cfg(["sweep=ladder"])
    rows = ladder_numbers.ladder_rows(cfg.report)
    arms = {(a["activation"], a["batchnorm"], a["init"]) for a in (cell_axes(make_cfg(j), 0) for j in ladder_jobs())}
    covered = set()
    for r in rows:
        covered |= {(r["activation"], r["batchnorm"], b) for b in r["baselines"]}
        covered.add((r["activation"], r["batchnorm"], r["pretrained"]))
    longer = {a for a in arms if a[2].endswith("_long")}
    assert arms - longer == covered
    assert all((act, bn, init.removesuffix("_long")) in covered for act, bn, init in longer)
    assert [r["rung"] for r in rows] == sorted(r["rung"] for r in rows)  # the rungs in order, 0 first


def test_the_relu_bn_autoencoder_cells_are_shared_by_rungs_2_and_3():
    """Rung 2's pretrained arm and rung 3's are the same cells: one arm file, one id, computed once."""
    jobs = [j for j in ladder_jobs() if "arm=relu_bn_autoencoder" in j]
    ids = [i for j in jobs for i in cell_ids(job_cells(make_cfg(j)))]
    assert len(ids) == len(set(ids)) == 2 * 3 * 5 * 10


def test_krahenbuhls_weights_variants_are_arms_of_their_own_with_stable_ids():
    plain = make_cfg(["init=krahenbuhl"])
    kmeans = make_cfg(["init=krahenbuhl", "init.weights=kmeans"])
    assert cell_axes(plain, 0)["init"] == "krahenbuhl" and cell_axes(kmeans, 0)["init"] == "krahenbuhl_kmeans"
    assert cell_ids(job_cells(plain))[0].startswith("mnist5k-mlp-krahenbuhl-relu")
    from bench.identity import cell_config, experiment_settings

    # the weights are an axis, not a folder setting: both variants live in one experiment
    assert experiment_settings(cell_config(plain, 0)) == experiment_settings(cell_config(kmeans, 0))


def test_xavier_gain_scales_each_layer_by_its_activations_gain():
    from bench.inits.random_init import apply_scheme
    from bench.models import build_mlp

    stds = {}
    for act in ("sigmoid", "tanh", "relu"):
        net = build_mlp(2000, 10, 2, 2000, act, False)
        apply_scheme(net, "xavier_gain", 0.0, torch.Generator().manual_seed(0))
        stds[act] = net.blocks[1].layer.weight.std().item()
        # the output layer has no activation after it: plain Xavier, sqrt(2 / (fan_in + fan_out))
        assert net.head.weight.std().item() == pytest.approx((2 / (2000 + 10)) ** 0.5, rel=0.05)
    xavier = (2 / (2000 + 2000)) ** 0.5
    assert stds["tanh"] == pytest.approx(xavier, rel=0.02)
    assert stds["sigmoid"] == pytest.approx(4 * xavier, rel=0.02)  # the Deep Learning Tutorials' factor
    assert stds["relu"] == pytest.approx(2**0.5 * xavier, rel=0.02)


def test_sigmoid_codes_are_reconstructed_with_cross_entropy():
    """A block above a sigmoid layer sees codes in [0, 1]: pretraining it minimises cross-entropy (its held-out
    loss is a cross-entropy, positive even for a perfect copy), the first block squared error (0 for a copy)."""
    import torch.nn.functional as F

    from bench.inits.autoencoder import reconstruction

    codes = torch.rand(64, 8)
    logits = torch.logit(codes.clamp(1e-4, 1 - 1e-4))
    assert reconstruction(logits, codes, unit_codes=True) == pytest.approx(
        F.binary_cross_entropy(codes.clamp(1e-4, 1 - 1e-4), codes).item(), rel=1e-3
    )
    assert reconstruction(codes, codes, unit_codes=False) == 0


def matrix_rows(effects: dict) -> pd.DataFrame:
    """effects: (rung, model, fraction) -> (mean, outcome); a hand-built ladder matrix."""
    rows = []
    for (rung, model, frac), (mean, word) in effects.items():
        rows.append(
            {
                "row": rung,
                "rung": rung,
                "label": f"rung {rung}",
                "activation": "sigmoid",
                "model": model,
                "labeled_fraction": frac,
                "test_acc_diff": mean,
                "test_acc_lo": mean - 0.01,
                "test_acc_hi": mean + 0.01,
                "outcome": word,
                "n_pairs": 10,
                "rival": "random",
            }
        )
    return pd.DataFrame(rows)


def control(m: pd.DataFrame) -> tuple[bool, list[str]]:
    """Whether the positive control holds on the matrix `m`, and the report's line per activation."""
    ok, checks = ladder_numbers.positive_control(m)
    return ok, ladder.control_lines(checks)


def analysis_of(cells: pd.DataFrame, reached: pd.DataFrame, report_cfg) -> Analysis:
    """The analysis of chosen cells with their steps to the headline target, as bench.analysis.analyze fills it."""
    headline = Target("95% of best", "relative", 0.95)
    reached = reached.assign(target=headline.name)
    return compare(
        Analysis(0.95, float(report_cfg.equivalence_margin) / 100, [headline], headline, reached, cells), report_cfg
    )


def test_the_positive_control_holds_only_when_all_three_published_directions_hold():
    good = {
        (0, "deep_mlp", 0.01): (0.08, "helps"),
        (0, "deep_mlp", 1.0): (0.01, "equivalent"),
        (0, "mlp", 0.01): (0.03, "helps"),
        (3, "deep_mlp", 0.01): (0.0, "equivalent"),
    }
    ok, lines = control(matrix_rows(good))
    assert ok and len(lines) == 1  # one rung-0 activation here
    assert "helps on deep_mlp at 0.01 labeled: yes" in lines[0]
    assert "larger than at 1 labeled: yes (+8.0 against +1.0 points)" in lines[0]
    assert "larger than on mlp: yes (+8.0 against +3.0 points)" in lines[0]
    # bigger on the shallow net than on the deep one: the third check fails, so the control fails
    ok, lines = control(matrix_rows({**good, (0, "mlp", 0.01): (0.12, "helps")}))
    assert not ok and "larger than on mlp: no (+8.0 against +12.0 points)" in lines[0]
    # no "helps" at rung 0 on the deep net with few labels
    ok, lines = control(matrix_rows({**good, (0, "deep_mlp", 0.01): (0.08, "inconclusive")}))
    assert not ok and "helps on deep_mlp at 0.01 labeled: no" in lines[0]


def test_the_stop_sentence_names_the_last_rung_where_pretraining_helped_and_what_follows():
    m = matrix_rows(
        {
            (0, "deep_mlp", 0.01): (0.08, "helps"),
            (1, "deep_mlp", 0.01): (0.05, "helps"),
            (2, "deep_mlp", 0.01): (0.0, "equivalent"),
            (3, "deep_mlp", 0.01): (0.0, "equivalent"),
        }
    )
    s = ladder.stopped_paying(m)
    assert "The last **helps** is at rung 1" in s and "from rung 2 on" in s and "stopped paying there" in s
    # an inconclusive entry above the last 'helps' is not 'no effect'
    unsure = ladder.stopped_paying(m.assign(outcome=["helps", "helps", "equivalent", "inconclusive"]))
    assert "cannot say" in unsure and "stopped paying" not in unsure
    assert "No entry of the matrix says **helps**" in ladder.stopped_paying(m.assign(outcome="equivalent"))
    assert "still pays at the top rung (3)" in ladder.stopped_paying(m.assign(outcome="helps"))


def test_the_ladder_matrix_pairs_each_rung_with_its_own_baseline_and_one_holm_family():
    """Two rows (sigmoid without BN against random; ReLU with BN against the better of lsuv and krahenbuhl on
    validation) on hand-built cells: the AE minus baseline differences are worked out by hand."""
    spec = []
    for seed in range(5):
        spec += [
            dict(init="random", activation="sigmoid", batchnorm=False, test_acc=0.60, final_val_acc=0.6),
            dict(init="autoencoder", activation="sigmoid", batchnorm=False, test_acc=0.70 + seed / 1000),
            dict(init="lsuv", activation="relu", batchnorm=True, test_acc=0.80, final_val_acc=0.80),
            dict(init="krahenbuhl", activation="relu", batchnorm=True, test_acc=0.90, final_val_acc=0.70),
            dict(init="autoencoder", activation="relu", batchnorm=True, test_acc=0.80 + (seed % 2) / 1000),
        ]
        for c in spec[-5:]:
            c.update(seed=seed, cell_id=f"{c['init']}-{c['activation']}-{seed}")
    base = dict(dataset="d", model="deep_mlp", labeled_fraction=0.01, lr=0.1, status="ok")
    cells = pd.DataFrame([{**base, "final_val_acc": 0.5, **c} for c in spec])
    reached = pd.DataFrame({"cell_id": cells["cell_id"], "steps": 100.0, "passes": 200.0, "seconds": 1.0})
    report = OmegaConf.create(
        {
            "confidence": 0.95,
            "equivalence_margin": 1.0,
            "ladder": [
                {"rung": 0, "label": "sig", "activation": "sigmoid", "batchnorm": False, "baselines": ["random"]},
                {
                    "rung": 3,
                    "label": "fast",
                    "activation": "relu",
                    "batchnorm": True,
                    "baselines": ["lsuv", "krahenbuhl"],
                },
            ],
        }
    )
    m = ladder_numbers.ladder_matrix(cells, reached, report).set_index("rung")
    assert m.loc[0, "rival"] == "random" and m.loc[0, "test_acc_diff"] == pytest.approx(0.102)
    assert m.loc[0, "outcome"] == "helps"
    # lsuv has the better validation accuracy (0.80 against 0.70), whatever krahenbuhl's test accuracy
    assert m.loc[3, "rival"] == "lsuv" and m.loc[3, "test_acc_diff"] == pytest.approx(0.0004)
    assert m.loc[3, "outcome"] == "equivalent"
    # one Holm family over the matrix's two entries: the smaller p doubled, the larger at least that
    assert m.loc[0, "p"] < m.loc[3, "p"]
    assert m.loc[0, "p_holm"] == pytest.approx(2 * m.loc[0, "p"])
    assert m.loc[3, "p_holm"] == pytest.approx(max(2 * m.loc[0, "p"], m.loc[3, "p"]))
    table = ladder.matrix_table(m.reset_index())
    assert list(table.columns) == ["rung", "rung arms (baseline)", "pretraining on top", "deep_mlp, 0.01 labeled"]
    assert table.iloc[0, 3].startswith("+10.2 [") and table.iloc[0, 3].endswith("helps vs random")


def test_an_rbm_row_stands_next_to_the_autoencoders_and_each_is_compared_with_longer_training():
    """One rung (ReLU with BN against lsuv) with both pretrainings and the equal-compute arms lsuv_long (for the
    autoencoder's passes) and lsuv_long_rbm (for the RBM's), on hand-built cells: every difference by hand."""
    spec = []
    accs = {"lsuv": 0.80, "autoencoder": 0.83, "rbm": 0.79, "lsuv_long": 0.82, "lsuv_long_rbm": 0.81}
    for seed in range(5):
        wobble = (seed % 2) / 1000  # a small spread, so that the t intervals are finite
        for init, acc in accs.items():
            extra = {"lsuv_long": 944, "lsuv_long_rbm": 300}.get(init, 0)
            spec.append(
                dict(init=init, test_acc=acc + (wobble if init in ("autoencoder", "rbm") else 0), extra_steps=extra)
            )
            spec[-1].update(seed=seed, cell_id=f"{init}-{seed}")
    base = dict(dataset="d", model="mlp", labeled_fraction=0.01, lr=0.1, status="ok", activation="relu")
    cells = pd.DataFrame([{**base, "batchnorm": True, "final_val_acc": 0.5, **c} for c in spec])
    reached = pd.DataFrame({"cell_id": cells["cell_id"], "steps": 100.0, "passes": 200.0, "seconds": 1.0})
    report = OmegaConf.create(
        {
            "confidence": 0.95,
            "equivalence_margin": 1.0,
            "ladder": [{"rung": 3, "label": "fast", "activation": "relu", "batchnorm": True, "baselines": ["lsuv"]}],
        }
    )
    m = ladder_numbers.ladder_matrix(cells, reached, report).set_index("pretrained")
    assert list(m.index) == ["autoencoder", "rbm"] and set(m["rival"]) == {"lsuv"}
    assert m.loc["autoencoder", "test_acc_diff"] == pytest.approx(0.0304)  # 0.83 + 0.4/1000 on average - 0.80
    assert m.loc["rbm", "test_acc_diff"] == pytest.approx(-0.0096)
    # each pretraining against the rival given its own passes as extra steps
    assert m.loc["autoencoder", "long_rival"] == "lsuv_long" and m.loc["rbm", "long_rival"] == "lsuv_long_rbm"
    assert m.loc["autoencoder", "long_diff"] == pytest.approx(0.0104)
    assert m.loc["rbm", "long_diff"] == pytest.approx(-0.0196)
    assert m.loc["autoencoder", "long_extra_steps"] == 944
    assert m.loc["rbm", "long_outcome"] == "hurts" and m.loc["autoencoder", "outcome"] == "helps"
    # one Holm family per pretraining (and one for the equal-compute comparisons of each): each entry is alone in
    # its family here, so its p is not adjusted; a second autoencoder entry would double the smaller p
    assert list(m["p_holm"]) == pytest.approx(list(m["p"]))
    assert list(m["long_p_holm"]) == pytest.approx(list(m["long_p"]))
    table = ladder.matrix_table(m.reset_index())
    assert list(table["pretraining on top"]) == ["autoencoder", "rbm"]
    longer = ladder.longer_training_table(m.reset_index())
    assert len(longer) == 2 and "vs lsuv_long (+944 steps)" in longer.iloc[0]["against the rival trained as long"]


def test_the_ladder_sections_state_the_control_the_matrix_the_figure_the_claims_and_the_lr_edges(tmp_path):
    """A hand-built ladder of three rows, two models and two fractions at two learning rates: pretraining helps
    only at rung 0 on the deep net with few labels (+10 points), so the control's first two checks hold and the
    third holds too (the shallow net's gain is +2); rung 3 shows no gain."""
    rng = np.random.default_rng(0)
    gain = {("deep_mlp", 0.01): 0.10, ("deep_mlp", 1.0): 0.01, ("mlp", 0.01): 0.02, ("mlp", 1.0): 0.0}
    rows = []
    for model, frac in gain:
        for act, bn, inits in (("sigmoid", False, ["random"]), ("relu", False, ["random"]), ("relu", True, ["lsuv"])):
            for init in [*inits, "autoencoder"]:
                for lr in (0.01, 0.1):
                    for seed in range(6):
                        up = gain[(model, frac)] if (init == "autoencoder" and act == "sigmoid") else 0.0
                        acc = 0.7 + up + rng.normal(0, 0.003) - (0.05 if lr == 0.01 else 0.0)
                        rows.append(
                            dict(
                                cell_id=f"{model}-{frac}-{act}-{init}-{lr}-{seed}",
                                dataset="d",
                                model=model,
                                labeled_fraction=frac,
                                init=init,
                                activation=act,
                                batchnorm=bn,
                                lr=lr,
                                seed=seed,
                                status="ok",
                                test_acc=acc,
                                final_val_acc=acc,
                                init_seconds=5.0 if init == "autoencoder" else 0.01,
                                init_forward_passes=1000.0 if init == "autoencoder" else 1.0,
                                init_backward_passes=800.0 if init == "autoencoder" else 0.0,
                                max_steps=100,
                            )
                        )
    all_cells = pd.DataFrame(rows)
    from bench.analysis import metrics

    cells = metrics.best_lr(all_cells)
    reached = pd.DataFrame(
        {
            "cell_id": cells["cell_id"],
            "steps": np.where(cells["activation"] == "relu", 20.0, 60.0),
            "seconds": 1.0,
        }
    )
    reached["passes"] = 2 * reached["steps"]
    cfg = make_cfg(["sweep=ladder"]).report
    with read_write(cfg):
        cfg.ladder = [
            LadderRow(rung=0, label="sigmoid", activation="sigmoid", batchnorm=False, baselines=["random"]),
            LadderRow(rung=1, label="relu", activation="relu", batchnorm=False, baselines=["random"]),
            LadderRow(rung=3, label="fast", activation="relu", batchnorm=True, baselines=["lsuv"]),
        ]
    sections = ladder.ladder_sections(analysis_of(cells, reached, cfg), cfg, tmp_path)
    assert [s.title.split(":")[0] for s in sections] == ["The ladder", "The seed's claims, measured"]
    text = "\n".join(sections[0].text)
    assert text.startswith("**Positive control reproduced:**")
    assert "The last **helps** is at rung 0" in text and "stopped paying there" in text
    assert (tmp_path / "ladder_effects.png").stat().st_size > 10_000
    matrix = sections[0].tables[0][1]
    assert matrix.shape == (3, 3 + 4) and "helps vs random" in matrix.iloc[0]["deep_mlp, 0.01 labeled"]
    claims = sections[1].tables[0][1].set_index("claim")
    # ReLU (20 steps) against sigmoid (60 steps), seed by seed: 3x fewer steps
    relu = claims.loc["a non-saturating activation (ReLU) converges faster than sigmoid"]
    assert relu["our figure"].startswith("3x [3x, 3x] fewer steps") and relu["verdict"] == "agree"
    cost = claims.loc["a fast init is about three orders of magnitude cheaper than pretraining"]
    assert "1,800x LSUV's passes" in cost["our figure"] and cost["verdict"] == "agree"
    # every arm is best at 0.1, the top of its two-value grid: all on the edge
    assert "24 of 24 arm-settings chose a learning rate on the edge" in lr_edge_section(all_cells).text[0]


def test_claims_say_not_recorded_rather_than_crash_on_results_without_pass_counts():
    cells = pd.DataFrame(
        [
            dict(cell_id=f"{i}{s}", dataset="d", model="mlp", labeled_fraction=1.0, init=i, activation="relu")
            | dict(batchnorm=True, seed=s, init_seconds=1.0, test_acc=0.9, final_val_acc=0.9, status="ok")
            for i in ("autoencoder", "lsuv")
            for s in range(3)
        ]
    )
    reached = pd.DataFrame({"cell_id": cells["cell_id"], "steps": 10.0})
    a = Analysis(0.95, 0.01, [], Target("t", "relative", 0.95), reached.assign(target="t"), cells)
    claims = ladder.claims_table(a)
    assert not any("three orders" in c for c in claims["claim"])  # no pass counts: that claim is not made


def test_the_init_cache_key_changes_with_the_strategys_code_version(monkeypatch):
    from bench import cell
    from bench.inits import autoencoder

    cfg = make_cfg(["init=autoencoder"])
    before = cell.init_cache_path(cfg, 0)
    monkeypatch.setattr(autoencoder, "CODE_VERSION", autoencoder.CODE_VERSION + 1)
    assert cell.init_cache_path(cfg, 0) != before
