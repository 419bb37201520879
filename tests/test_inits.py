import math

import pytest
import torch
from torch import nn

from bench.cell import initialize_model, run_job
from bench.config import ACTIVATIONS, data_config
from bench.data import UnlabeledPool, load_dataset
from bench.inits import get_strategy, run_init
from bench.inits.krahenbuhl import gradient_ratios, unit_stats
from bench.inits.lsuv import output_std
from bench.models import build_cnn, build_mlp, forward_order
from tests.conftest import CACHE, make_cfg

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def digits():
    return load_dataset(data_config("digits"), CPU)


def init_cfg(name: str, *overrides: str):
    return make_cfg([f"init={name}", *overrides]).init


def layer_stds(model, layers, x):
    model.eval()
    with torch.no_grad():
        return [output_std(model, m, x) for m in layers]


def test_unknown_strategy_is_a_clear_error():
    with pytest.raises(ValueError, match="allowed values are random, lsuv, krahenbuhl, autoencoder"):
        get_strategy("magic")


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("batchnorm", [False, True])
def test_lsuv_gives_unit_std_on_a_fresh_batch(digits, activation, batchnorm):
    torch.manual_seed(0)
    model = build_mlp(64, 10, depth=4, width=64, activation=activation, batchnorm=batchnorm, inplace=True)
    model.train()
    cost = run_init("lsuv", model, UnlabeledPool(digits.x_train), init_cfg("lsuv"), torch.Generator().manual_seed(0))
    assert model.training  # mode left as it was
    assert cost.forward_passes >= 6 and cost.samples == cost.forward_passes * 512 and cost.seconds > 0
    fresh = digits.x_val  # not the batch LSUV was fitted on
    layers = forward_order(model, fresh)
    stds = layer_stds(model, layers, fresh)
    assert all(abs(s - 1) < 0.2 for s in stds), stds
    assert ("note" in cost.info) == batchnorm


def test_lsuv_cost_counts_passes_that_stop_at_the_layer(digits):
    """Each LSUV measurement runs the network only up to the layer it rescales. By hand for a
    64-32-32-10 MLP (multiply-adds 2048, 1024, 320): the passes reach 2048/3392, 3072/3392 and 1."""
    torch.manual_seed(0)
    model = build_mlp(64, 10, 2, 32, "relu", False)
    cost = run_init("lsuv", model, UnlabeledPool(digits.x_train), init_cfg("lsuv"), torch.Generator().manual_seed(0))
    reach = [2048 / 3392, 3072 / 3392, 1.0]
    tries = [1 + layer["rescalings"] for layer in cost.info["layers"]]
    assert cost.forward_passes == pytest.approx(sum(r * t for r, t in zip(reach, tries)))
    assert cost.samples == pytest.approx(cost.forward_passes * min(512, len(digits.x_train)))


def test_lsuv_matches_the_reference_package():
    import lsuv

    # Not in-place: the package's hook keeps `output.detach().cpu()`, which on the CPU aliases the
    # tensor an in-place ReLU then overwrites (LSUV-pytorch#2), so it would measure post-ReLU stds.
    torch.manual_seed(0)
    x = torch.randn(512, 30) * 3 + 1
    ours = nn.Sequential(nn.Linear(30, 50), nn.ReLU(), nn.Linear(50, 40), nn.Tanh(), nn.Linear(40, 10))
    theirs = nn.Sequential(nn.Linear(30, 50), nn.ReLU(), nn.Linear(50, 40), nn.Tanh(), nn.Linear(40, 10))
    run_init("lsuv", ours, UnlabeledPool(x), init_cfg("lsuv"), torch.Generator().manual_seed(0))
    lsuv.lsuv_with_singlebatch(theirs, x, verbose=False)
    layers_ours, layers_theirs = forward_order(ours, x), forward_order(theirs, x)
    for a, b in zip(layer_stds(ours, layers_ours, x), layer_stds(theirs, layers_theirs, x)):
        assert abs(a - b) <= 0.1 and abs(a - 1) <= 0.1


def test_lsuv_walks_layers_in_forward_order_not_registration_order():
    class Backwards(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Linear(20, 5)
            self.b = nn.Linear(20, 20)
            self.a = nn.Linear(10, 20)

        def forward(self, x):
            return self.c(torch.relu(self.b(torch.relu(self.a(x)))))

    torch.manual_seed(0)
    m = Backwards()
    x = torch.randn(512, 10) * 5
    cost = run_init("lsuv", m, UnlabeledPool(x), init_cfg("lsuv"), torch.Generator().manual_seed(0))
    assert [layer["layer"] for layer in cost.info["layers"]] == ["Linear"] * 3
    # processed a, b, c in turn: each layer's std is 1 given the ones before it were already fixed
    assert all(abs(s - 1) <= 0.1 for s in layer_stds(m, [m.a, m.b, m.c], x))


@pytest.mark.parametrize(
    "shape,builder",
    [
        ((1, 8, 8), lambda: build_mlp(64, 10, 3, 32, "relu", False)),
        ((1, 8, 8), lambda: build_cnn((1, 8, 8), 10, [8, 16], 3, "tanh", True)),
        ((1, 40), lambda: build_cnn((1, 40), 10, [8, 16], 5, "maxout", False)),
    ],
)
@pytest.mark.parametrize("weights", ["gaussian", "pca", "kmeans"])
def test_krahenbuhl_within_layer_gives_beta_mean_and_unit_std(shape, builder, weights):
    torch.manual_seed(0)
    x = torch.randn(600, *shape)
    model = builder()
    cfg = init_cfg(
        "krahenbuhl", f"init.weights={weights}", "init.beta=0.3", "init.between_layers=false", "init.batch_size=600"
    )
    run_init("krahenbuhl", model, UnlabeledPool(x), cfg, torch.Generator().manual_seed(0))
    model.eval()
    for m in forward_order(model, x):  # fitted on all of x: the batch it was fitted on
        captured = {}
        h = m.register_forward_hook(lambda mod, i, o: captured.setdefault("y", o.detach()))
        with torch.no_grad():
            model(x)
        h.remove()
        mean, std = unit_stats(captured["y"])
        assert torch.allclose(mean, torch.full_like(mean, 0.3), atol=1e-3)
        assert torch.allclose(std, torch.ones_like(std), atol=1e-3)


def test_krahenbuhl_between_layer_step_equalizes_gradient_ratios():
    torch.manual_seed(0)
    x = torch.randn(512, 64)
    model = build_mlp(64, 10, depth=4, width=64, activation="relu", batchnorm=False)
    cfg = init_cfg("krahenbuhl", "init.between_max_iter=30")
    cost = run_init("krahenbuhl", model, UnlabeledPool(x), cfg, torch.Generator().manual_seed(0))
    between = cost.info["between"]
    assert between["converged"], between
    log_t = math.log(between["target"])
    assert all(abs(math.log(r) / log_t - 1) < 0.01 for r in between["ratios"])
    assert cost.backward_passes == between["iterations"] + 1
    # a fresh noise draw agrees too, within the noise of the estimate
    layers = forward_order(model, x)
    model.eval()
    ratios, _ = gradient_ratios(model, layers, x, torch.Generator().manual_seed(123))
    assert max(ratios) / min(ratios) < 1.2


@pytest.mark.parametrize("weights,width,limit", [("pca", 512, 0.15), ("kmeans", 256, 0.1)])
def test_krahenbuhl_data_driven_weights_hold_on_fresh_data(weights, width, limit):
    """pca/kmeans whitening of a 784-dimensional input fitted on a 512-example batch fits noise: on
    the test split the median first-layer unit's std was off from 1 by 0.50 (pca, 512 units) and 0.14
    (kmeans, 256 units). Fitted on the whole unlabeled pool it holds (measured 0.07 and 0.07)."""
    data = load_dataset(data_config("mnist5k", cache_dir=CACHE), CPU)
    torch.manual_seed(0)
    model = build_mlp(784, 10, 1, width, "relu", False)
    cfg = init_cfg("krahenbuhl", f"init.weights={weights}", "init.between_layers=false")
    cost = run_init("krahenbuhl", model, UnlabeledPool(data.x_train), cfg, torch.Generator().manual_seed(0))
    assert cost.info["layers"][0]["weights"] == weights
    with torch.no_grad():
        fresh = model.blocks[0].layer(data.x_test.flatten(1))
    assert (fresh.std(0) - 1).abs().median() < limit


def test_krahenbuhl_never_reads_labels(digits):
    """The init only gets an UnlabeledPool; poisoning the labels changes nothing."""

    def run(y):
        torch.manual_seed(0)
        model = build_mlp(64, 10, 2, 32, "relu", False)
        pool = UnlabeledPool(digits.x_train)
        run_init("krahenbuhl", model, pool, init_cfg("krahenbuhl"), torch.Generator().manual_seed(0))
        return torch.cat([p.flatten() for p in model.parameters()])

    assert torch.equal(run(digits.y_train), run(torch.zeros_like(digits.y_train)))


@pytest.mark.parametrize(
    "model_name,activation,batchnorm",
    [
        ("mlp", "sigmoid", False),
        ("mlp", "maxout", True),
        ("cnn", "relu", True),
        ("cnn", "prelu", False),
    ],
)
def test_autoencoder_reconstruction_falls_and_features_move(digits, model_name, activation, batchnorm):
    # Small models, where the property does not depend on size: at these sizes the held-out loss falls 3x
    # to 50x (the default 32-64 channels train 10x longer, a width of 256 4x). A CNN step costs more, so
    # the CNNs take 300 steps a layer.
    small, steps = (["model.channels=[8,16]"], 300) if model_name == "cnn" else (["model.width=64"], 600)
    cfg = make_cfg(
        [
            *small,
            "data=digits",
            f"model={model_name}",
            f"activation={activation}",
            f"model.batchnorm={batchnorm}",
            "init=autoencoder",
            f"init.steps_per_layer={steps}",
            "init.cache=false",
        ]
    )
    torch.manual_seed(0)
    model, cost, hit = initialize_model(cfg, digits, 0, CPU)
    torch.manual_seed(0)
    from bench.models import build_model

    start = build_model(cfg.model, cfg.activation, digits.input_shape, digits.num_classes)
    for layer in cost.info["layers"]:
        assert layer["held_out_loss_after"] < layer["held_out_loss_before"], layer
    assert not torch.allclose(model.blocks[0].layer.weight, start.blocks[0].layer.weight)
    assert torch.equal(model.head.weight, start.head.weight)  # the output layer keeps its random start
    # each step's backward runs through one block and its decoder only: less than a full pass
    assert cost.steps == steps * len(model.blocks) and 0 < cost.backward_passes < cost.steps and not hit


def test_autoencoder_cost_counts_frozen_blocks_and_decoder(digits):
    """Counted by hand for a 64-32-32-10 MLP: multiply-adds 2048, 1024 and 320 per example. Each step
    runs the frozen blocks below forward, the block and its decoder forward and backward; the
    held-out loss is measured once before (from the input) and once after (on the stored codes)."""
    steps = 7
    cfg = make_cfg(
        ["data=digits", "model.depth=2", "model.width=32", "model.batchnorm=false", "init=autoencoder"]
        + [f"init.steps_per_layer={steps}", "init.cache=false"]
    )
    _, cost, _ = initialize_model(cfg, digits, 0, CPU)
    a, b = 2048 / 3392, 1024 / 3392  # the two hidden layers' shares of a forward pass
    per_pass = [(0.0, 2 * a), (a, 2 * b)]  # (frozen below, block + decoder) for blocks 0 and 1
    forward = sum((below + coder) * (steps + 1) + coder for below, coder in per_pass)
    assert cost.forward_passes == pytest.approx(forward)
    assert cost.backward_passes == pytest.approx(steps * (2 * a + 2 * b))
    assert cost.steps == 2 * steps


def test_autoencoder_masks_inputs_to_the_background_not_the_mean(digits, monkeypatch):
    """Masking noise sets a pixel to black (raw 0), as in the denoising-autoencoder papers. After
    standardization black is the data's minimum (digits: one channel, raw pixels from 0), not 0."""
    from bench.inits import autoencoder

    seen = []
    original = autoencoder.corrupt

    def spy(x, kind, level, generator, off=0.0):
        noisy = original(x, kind, level, generator, off)
        seen.append((x, noisy))
        return noisy

    monkeypatch.setattr(autoencoder, "corrupt", spy)
    cfg = make_cfg(["data=digits", "init=autoencoder", "init.steps_per_layer=2", "init.cache=false"])
    initialize_model(cfg, digits, 0, CPU)
    x, noisy = seen[0]  # the first block's first step: inputs
    black = digits.x_train.min()
    assert black < -0.5  # the mean is 0: the old masking wrote 0
    masked = noisy != x
    assert masked[x != black].float().mean() == pytest.approx(cfg.init.noise, abs=0.03)  # black stays black
    assert torch.allclose(noisy[masked], torch.full_like(noisy[masked], black.item()), atol=1e-5)
    x2, noisy2 = seen[-1]  # the last block: codes, whose "off" is 0
    assert (noisy2[noisy2 != x2] == 0).all()


def test_autoencoder_cache_is_hit_and_full_cost_still_charged(cfg_factory, tmp_path):
    common = [
        "data=digits",
        "init=autoencoder",
        "init.steps_per_layer=50",
        f"data.cache_dir={tmp_path}/cache",
        "train.max_steps=10",
    ]
    [first] = run_job(cfg_factory(*common, "data.labeled_fraction=0.5"))
    [second] = run_job(cfg_factory(*common, "data.labeled_fraction=0.2", "train.lr=0.01"))
    assert not first["init_cache_hit"] and second["init_cache_hit"]
    assert second["init_cost"] == first["init_cost"] and first["init_cost"]["steps"] == 100
    [other_seed] = run_job(cfg_factory(*common, "data.labeled_fraction=0.2", "seed=1"))
    assert not other_seed["init_cache_hit"]


def test_every_strategy_reports_its_cost(cfg_factory):
    for name in ("random", "lsuv", "krahenbuhl", "autoencoder", "rbm"):
        short = name in ("autoencoder", "rbm")
        init = [f"init={name}", "init.steps_per_layer=20"] if short else [f"init={name}"]
        [r] = run_job(cfg_factory("data=digits", *init, "train.max_steps=10", "init.cache=false"))
        assert r["status"] == "ok", r["error"]
        assert set(r["init_cost"]) == {"seconds", "forward_passes", "backward_passes", "samples", "steps"}
        assert (r["init_cost"]["forward_passes"] > 0) == (name != "random")


# ---------------------------------------------------------------- rbm


def rbm_cfg(*overrides: str):
    return make_cfg(["data=digits", "init=rbm", "init.cache=false", *overrides])


def spy_rbms(monkeypatch) -> list:
    """The RBMs `initialize` trains, in layer order, as they are after training."""
    from bench.inits import rbm

    trained = []
    original = rbm.train_rbm

    def spy(machine, v, *args, **kwargs):
        out = original(machine, v, *args, **kwargs)
        trained.append(out)
        return out

    monkeypatch.setattr(rbm, "train_rbm", spy)
    return trained


def unit_scaled(x, pool):
    """Each feature's pool range mapped to [0, 1]; a feature constant over the pool maps to 0."""
    lo, hi = pool.min(0).values, pool.max(0).values
    return torch.where(hi > lo, (x - lo) / (hi - lo), torch.zeros_like(x))


def test_rbm_copy_is_exact_for_sigmoid(digits, monkeypatch):
    """Sigmoid units without BatchNorm: the network's hidden layers are the RBMs' hidden probabilities
    (the DBN's up pass) on the same images, for the pool and for images it never saw (the scaling of the
    standardized inputs to [0, 1] is folded into the first layer)."""
    trained = spy_rbms(monkeypatch)
    cfg = rbm_cfg("model.width=32", "activation=sigmoid", "model.batchnorm=false", "init.steps_per_layer=300")
    model, cost, _ = initialize_model(cfg, digits, 0, CPU)
    torch.manual_seed(0)
    from bench.models import build_model

    start = build_model(cfg.model, cfg.activation, digits.input_shape, digits.num_classes)
    first, second = trained
    pool = digits.x_train.flatten(1)
    assert (pool.max(0).values == pool.min(0).values).any()  # digits has constant pixels: the 0 case is covered
    model.eval()
    with torch.no_grad():
        for x in (pool, digits.x_val.flatten(1)):
            h1 = first.hidden_probs(unit_scaled(x, pool))
            assert torch.allclose(model.features(x, upto=1), h1, atol=1e-5)
            assert torch.allclose(model.features(x, upto=2), second.hidden_probs(h1), atol=1e-5)
    assert torch.equal(model.head.weight, start.head.weight)  # the output layer keeps the network's init
    assert "note" not in cost.info
    for layer in cost.info["layers"]:
        assert layer["held_out_reconstruction_after"] < layer["held_out_reconstruction_before"], layer


def test_rbm_on_maxout_with_batchnorm_fills_piece_0_and_says_so(digits, monkeypatch):
    trained = spy_rbms(monkeypatch)
    cfg = rbm_cfg("model.width=16", "activation=maxout", "activation.pieces=3", "init.steps_per_layer=20")
    model, cost, _ = initialize_model(cfg, digits, 0, CPU)
    torch.manual_seed(0)
    from bench.models import build_model

    start = build_model(cfg.model, cfg.activation, digits.input_shape, digits.num_classes)
    second = model.blocks[1].layer  # above the first layer nothing is folded: W and c as the RBM has them
    assert torch.equal(second.weight[::3], trained[1].weight) and torch.equal(second.bias[::3], trained[1].hidden_bias)
    for piece in (1, 2):  # the other pieces keep the network's own init
        for block, fresh in zip(model.blocks, start.blocks):
            assert torch.equal(block.layer.weight[piece::3], fresh.layer.weight[piece::3])
    assert "Maxout" in cost.info["note"]
    assert all(layer["hidden_bias_absorbed_by_batchnorm"] > 0 for layer in cost.info["layers"])


def test_rbm_cost_counts_its_matrix_products(digits):
    """By hand for a 64-32-32-10 MLP (multiply-adds 2048, 1024, 320 per example): per update one product up
    (positive phase) and two per Gibbs step (down, up), forward; the gradient's two outer products, one
    backward of the layer; the held-out error before and after (up and down each); one pass of the pool
    through the first RBM to make the second one's visibles."""
    steps, k, batch = 7, 2, 10
    cfg = rbm_cfg(
        "model.width=32", "model.batchnorm=false", f"init.steps_per_layer={steps}", f"init.cd_steps={k}",
        f"init.batch_size={batch}",
    )  # fmt: skip
    _, cost, _ = initialize_model(cfg, digits, 0, CPU)
    a, b = 2048 / 3392, 1024 / 3392
    n = len(digits.x_train)
    held = n // 10
    assert cost.forward_passes == pytest.approx((a + b) * (steps * (1 + 2 * k) + 2 * 2) + a)
    assert cost.samples == pytest.approx((a + b) * (steps * (1 + 2 * k) * batch + 2 * 2 * held) + a * n)
    assert cost.backward_passes == pytest.approx(steps * (a + b))
    assert cost.steps == 2 * steps


def test_rbm_cache_is_hit_and_full_cost_still_charged(cfg_factory, tmp_path):
    common = ["data=digits", "init=rbm", "init.steps_per_layer=30", "model.width=32", "train.max_steps=10"]
    common.append(f"data.cache_dir={tmp_path}/cache")
    [first] = run_job(cfg_factory(*common, "data.labeled_fraction=0.5"))
    [second] = run_job(cfg_factory(*common, "data.labeled_fraction=0.2", "train.lr=0.01"))
    assert first["status"] == "ok" and not first["init_cache_hit"] and second["init_cache_hit"]
    assert second["init_cost"] == first["init_cost"] and first["init_cost"]["steps"] == 60
    [persistent] = run_job(cfg_factory(*common, "data.labeled_fraction=0.2", "init.persistent=true"))
    assert not persistent["init_cache_hit"]


@pytest.mark.parametrize(
    "override,key",
    [
        ("model=cnn", "model"),
        ("init.cd_steps=0", "init.cd_steps"),
        ("init.lr=0", "init.lr"),
        ("init.lr=-0.01", "init.lr"),
        ("init.batch_size=0", "init.batch_size"),
        ("init.steps_per_layer=-1", "init.steps_per_layer"),
        ("init.weight_std=0", "init.weight_std"),
    ],
)
def test_rbm_bad_values_name_the_key(override, key):
    from bench.config import ConfigError, validate

    with pytest.raises(ConfigError) as e:
        validate(make_cfg(["init=rbm", override]))
    assert e.value.key == key and override.split("=")[1] in str(e.value)
    if key == "model":
        assert "mlp" in e.value.allowed


@pytest.mark.parametrize("model", ["mlp", "deep_mlp"])
def test_rbm_composes_with_every_activation(model):
    from bench.config import validate

    for activation in ACTIVATIONS:
        validate(make_cfg(["init=rbm", f"model={model}", f"activation={activation}"]))


def test_rbm_matches_scikit_learns_bernoulli_rbm():
    """Our RBM against scikit-learn's BernoulliRBM on its digits (scaled to [0, 1] as its RBM example does):
    same data, 64 hidden units, learning rate, batch and number of updates (scikit-learn's defaults: 0.1, 10,
    10 epochs). scikit-learn runs persistent CD; we check our persistent variant and our default CD-1.
    Both RBMs are scored by scikit-learn's own code (our weights loaded into a BernoulliRBM) on held-out
    images. Tolerances, from four seeds of each at these settings: scikit-learn's mean pseudo-likelihood
    spread over 0.53 nats, its reconstruction error over 4% and its probe accuracy over 1.1 points; ours
    (either variant) lay within 0.5 nats, 8% and 1.1 points of scikit-learn's mean. We allow 1 nat, 15% and
    2.5 points. An untrained RBM is about 25 nats away (64 log 1/2 = -44.4 against about -19.7), so the
    pseudo-likelihood bound does tell trained from untrained."""
    from types import SimpleNamespace

    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import BernoulliRBM

    from bench.inits.rbm import new_rbm, train_rbm

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x / 16, y, test_size=0.3, random_state=0, stratify=y)
    lr, batch, epochs, hidden = 0.1, 10, 10, 64
    updates = epochs * math.ceil(len(x_train) / batch)  # scikit-learn: ceil(n / batch) mini-batches an epoch

    def measure(rbm: BernoulliRBM) -> tuple[float, float, float]:
        rbm.random_state = 123  # the pseudo-likelihood flips one random unit per image: the same ones for all
        pl = rbm.score_samples(x_test).mean()
        h = rbm.transform(x_test)
        recon = 1 / (1 + np.exp(-(h @ rbm.components_ + rbm.intercept_visible_)))
        probe = LogisticRegression(max_iter=2000).fit(rbm.transform(x_train), y_train)
        return pl, ((recon - x_test) ** 2).mean(), probe.score(h, y_test)

    settings = dict(learning_rate=lr, batch_size=batch, n_iter=epochs)
    theirs = np.array([measure(BernoulliRBM(hidden, **settings, random_state=s).fit(x_train)) for s in range(3)])
    theirs = theirs.mean(0)

    def ours(persistent: bool, steps: int) -> tuple[float, float, float]:
        g = torch.Generator().manual_seed(0)
        cfg = SimpleNamespace(steps_per_layer=steps, batch_size=batch, lr=lr, cd_steps=1, persistent=persistent)
        rbm = train_rbm(new_rbm(64, hidden, 0.01, g), torch.tensor(x_train, dtype=torch.float32), cfg, g)
        as_theirs = BernoulliRBM(hidden)
        as_theirs.components_ = rbm.weight.double().numpy()
        as_theirs.intercept_hidden_ = rbm.hidden_bias.double().numpy()
        as_theirs.intercept_visible_ = rbm.visible_bias.double().numpy()
        return measure(as_theirs)

    for persistent in (True, False):
        pl, recon, probe = ours(persistent, updates)
        assert abs(pl - theirs[0]) < 1.0, (persistent, pl, theirs)
        assert abs(recon / theirs[1] - 1) < 0.15, (persistent, recon, theirs)
        assert abs(probe - theirs[2]) < 0.025, (persistent, probe, theirs)
    untrained_pl = ours(False, 0)[0]
    assert theirs[0] - untrained_pl > 10


# ---------------------------------------------------------------- what an equal-compute rival is given


@pytest.mark.parametrize(
    "name,model",
    [
        ("autoencoder", ["model.depth=2", "model.width=32", "model.batchnorm=false"]),
        ("autoencoder", ["model=deep_mlp", "activation=maxout"]),  # maxout: layers wider than their codes
        ("autoencoder", ["model=cnn", "model.channels=[4,8]"]),  # convolutions: shares by output positions
        ("rbm", ["model.depth=3", "model.width=24", "activation=sigmoid"]),
        ("rbm", ["model.width=16", "activation=maxout", "model.batchnorm=true"]),
    ],
)
def test_planned_passes_equal_what_the_pretraining_counts(digits, name, model):
    """The budget of lsuv_long is known before anything trains: planned_passes must give exactly the passes
    the strategy counts when it runs (its counts are checked by hand in the tests above)."""
    from bench.inits import planned_passes

    steps = ["init.steps_per_layer=5"]
    cfg = make_cfg(["data=digits", f"init={name}", "init.cache=false", *steps, *model])
    trained, cost, _ = initialize_model(cfg, digits, 0, CPU)
    forward, backward = planned_passes(name, trained, digits.x_train[:1], len(digits.x_train), cfg.init)
    assert forward == pytest.approx(cost.forward_passes) and backward == pytest.approx(cost.backward_passes)


def test_an_equal_compute_rival_trains_its_steps_plus_the_pretrainings_passes(cfg_factory):
    """init=lsuv_long_short: LSUV, then max_steps plus one step per two passes autoencoder_short would count on
    this model (20 steps a layer). Checked against the autoencoder_short cell's own counted passes."""
    small = ("data=digits", "train.max_steps=30", "model.width=16")
    ae = cfg_factory("init=autoencoder_short", *small)
    long = cfg_factory("init=lsuv_long_short", *small)
    (pretrained,) = run_job(ae)
    (rival,) = run_job(long)
    passes = pretrained["init_cost"]["forward_passes"] + pretrained["init_cost"]["backward_passes"]
    assert rival["axes"]["init"] == "lsuv_long" and rival["config"]["init"]["name"] == "lsuv"
    assert rival["budget"]["matched_passes"] == pytest.approx(passes)
    assert rival["budget"]["extra_steps"] == round(passes / 2) > 0
    assert rival["final"]["step"] == 30 + rival["budget"]["extra_steps"] == rival["budget"]["max_steps"]
    assert pretrained["final"]["step"] == 30 and "budget" not in pretrained
