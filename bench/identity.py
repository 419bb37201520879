"""What a cell is: its config, its axes, its id, and the settings that define the experiment a results
folder holds. Pure functions of the composed config: the sweep's preflight uses them without importing
the training stack."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bench.strategies import long_suffix  # the `_long` naming rule of an equal-compute rival

# Keys that say where or how a cell runs, not what it computes: left out of its identity.
NON_SEMANTIC_KEYS = (
    "name",
    "results_root",
    "out_dir",
    "force",
    "device",
    "threads",
    "n_seeds",
    "fail_on",
    "report",
    "append",
    "dry_run",
    "logger",
)
NON_SEMANTIC_DATA_KEYS = ("root", "download", "cache_dir")
# The grid's axes: a results folder holds many values of these, one value of everything else.
AXIS_KEYS = (
    "data.name",
    "model.name",
    "init.name",
    "init.weights",  # Krähenbühl's gaussian, pca and kmeans weights are arms of their own (init_label)
    "activation.name",
    "model.batchnorm",
    "data.labeled_fraction",
    "train.lr",
    "train.lrs",
    "seed",
)
# A config group's keys are read only by the group's choice (init.noise by the autoencoder): they are
# named with it, init[autoencoder].noise, so that cells of other choices never conflict over them.
CHOICE_GROUPS = ("data", "model", "init", "activation")


def job_cells(cfg: DictConfig) -> list[tuple[DictConfig, int]]:
    """The cells of one job: (the cell's config, its seed) for every learning rate of `train.lrs` (or
    the one `train.lr`) and every seed seed .. seed+n_seeds-1. A cell's config has a single train.lr, so
    its id is the same whether its learning rate came from a list or from a sweep over train.lr."""
    lrs = list(cfg.train.lrs) if cfg.train.lrs is not None else [cfg.train.lr]
    configs = []
    for lr in lrs:
        c = copy.deepcopy(cfg)
        c.train.lr, c.train.lrs = float(lr), None
        configs.append(c)
    return [(c, s) for c in configs for s in range(cfg.seed, cfg.seed + cfg.n_seeds)]


def cell_config(cfg: DictConfig, seed: int) -> dict:
    """The resolved config of one seed's cell, as stored in its result."""
    return seeded(OmegaConf.to_container(cfg, resolve=True), seed)


def seeded(resolved: dict, seed: int) -> dict:
    """A job's resolved config as the stored config of its cell at this seed."""
    return {**resolved, "seed": seed, "n_seeds": 1}


def digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def cell_id(cfg: DictConfig, seed: int) -> str:
    """A readable name plus a hash of every setting that changes the numbers, so the same cell always
    lands in the same folder and any other change lands in a new one."""
    return cell_ids([(cfg, seed)])[0]


def cell_ids(cells: list[tuple[DictConfig, int]]) -> list[str]:
    """cell_id of each (config, seed), resolving each distinct config once: a job's cells share one
    config per learning rate, and resolving it (~7 ms) was most of the preflight of a large grid."""
    resolved: dict[int, tuple[dict, dict]] = {}
    ids = []
    for cfg, seed in cells:
        if id(cfg) not in resolved:
            resolved[id(cfg)] = (OmegaConf.to_container(cfg, resolve=True), cell_axes(cfg, seed))
        c, a = resolved[id(cfg)]
        name = (
            f"{a['dataset']}-{a['model']}-{a['init']}-{a['activation']}-bn{int(a['batchnorm'])}"
            f"-f{a['labeled_fraction']:g}-lr{a['lr']:g}-s{seed}"
        )
        ids.append(f"{name}-{digest(semantic_config(seeded(c, seed)))}")
    return ids


def init_label(init: DictConfig, match_compute: Any = None) -> str:
    """The init axis's value: the strategy's name, and for Krähenbühl's data-driven weights the kind
    too (krahenbuhl_kmeans, krahenbuhl_pca), so that those variants are arms beside the gaussian one in
    one folder (the gaussian keeps the plain name, and so the ids it always had). A cell trained for a
    pretraining's passes on top of its steps (train.match_compute) is an arm of its own: `lsuv_long`
    (the autoencoder's passes), `lsuv_long_rbm` (an RBM stack's)."""
    weights = init.get("weights", "gaussian")
    label = init.name if weights == "gaussian" else f"{init.name}_{weights}"
    return label + long_suffix(match_compute)


def cell_axes(cfg: DictConfig, seed: int) -> dict:
    return {
        "dataset": cfg.data.name,
        "model": cfg.model.name,
        "init": init_label(cfg.init, cfg.train.get("match_compute")),
        "activation": cfg.activation.name,
        "batchnorm": bool(cfg.model.batchnorm),
        "labeled_fraction": float(cfg.data.labeled_fraction),
        "lr": float(cfg.train.lr),
        "seed": int(seed),
    }


def semantic_config(c: dict) -> dict:
    """A cell's stored config without the keys that do not change its numbers."""
    semantic = {k: v for k, v in c.items() if k not in NON_SEMANTIC_KEYS}
    semantic["data"] = {k: v for k, v in c["data"].items() if k not in NON_SEMANTIC_DATA_KEYS}
    if isinstance(semantic.get("train"), dict) and semantic["train"].get("match_compute", 0) is None:
        # added after schema 3 with a neutral default: left out when unset, so every earlier cell keeps its id
        semantic["train"] = {k: v for k, v in semantic["train"].items() if k != "match_compute"}
    return semantic


def experiment_settings(c: dict) -> dict[str, Any]:
    """The flat settings of a cell's stored config that its results folder must share with every other
    cell in it: every key that changes the numbers except the grid axes."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            flat[prefix] = node

    semantic = semantic_config(c)
    train = dict(semantic.get("train") or {})
    match = train.pop("match_compute", None)
    if isinstance(match, dict):
        # an equal-compute rival's budget is part of what its cells computed: named with its pretraining, as a
        # group's keys are with its choice, so that lsuv_long (the autoencoder's passes) and lsuv_long_rbm are two
        # arms of one folder while two budgets of the same arm (lsuv_long after lsuv_long_short) conflict
        walk(f"train.match_compute[{match.get('name')}]", {k: v for k, v in match.items() if k != "name"})
        semantic["train"] = train
    for group in CHOICE_GROUPS:
        node = semantic.pop(group, {}) or {}
        choice = node.get("name")
        walk(f"{group}[{choice}]", {k: v for k, v in node.items() if f"{group}.{k}" not in AXIS_KEYS})
    walk("", {k: v for k, v in semantic.items() if k != "seed"})
    for key in AXIS_KEYS:
        group, _, field = key.partition(".")
        if field and group not in CHOICE_GROUPS:
            for k in [k for k in flat if k == key or k.startswith(key + ".")]:
                flat.pop(k)
    return flat


def conflicts(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Keys both settings hold with different values: key -> (value in a, value in b)."""
    return {k: (a[k], b[k]) for k in sorted(set(a) & set(b)) if json.dumps(a[k]) != json.dumps(b[k])}


AD_HOC_NAME = "runs"  # the default `name`: single runs started without one


def single_run_dir(cfg: DictConfig) -> str:
    """Where a single run's results go: results_root/name, and for ad-hoc runs (the default name) a
    folder of their own settings, results/runs/<hash>, so single runs of different settings never
    share a folder (sweeps keep results/<name>, checked by the folder's experiment record)."""
    if cfg.name != AD_HOC_NAME:
        return str(cfg.out_dir)
    return f"{cfg.out_dir}/{digest(experiment_settings(cell_config(*job_cells(cfg)[0])))[:8]}"
