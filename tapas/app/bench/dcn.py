"""``tapas bench dcn``: repeatability, speed and meaning of the DCN.

* ``dcn_seed_std_max``: for each built-in dataset (digits, mnist5k, mnist1d) the DCN
  is computed with seeds 0, 1, 2; the population standard deviation (numpy's
  ``std``, ddof=0) over the three; the maximum over datasets is reported.
* ``seconds_10k_28x28``: wall time of one ``compute_dcn`` on 10,000 images of 28x28:
  ``mnist5k?repeat=2&pixel_noise=0.1`` (the 5,000 MNIST images twice, each copy
  with independent Gaussian pixel noise of std 0.1), with ``speed_threads`` torch
  threads (default 2, the whole machine), loading excluded.
* ``seconds_10k_3x32x32``: the same on 10,000 colour images of 3x32x32:
  ``cmnist?repeat=2&pixel_noise=0.1``; ``steps_10k_3x32x32`` is the probes' optimizer
  steps, which the probe budget (``max_steps``, :data:`probenet.dcn.DEFAULT_MAX_STEPS`
  per probe) bounds.
* ``spearman_dcn_vs_panel``: over the :data:`FAMILY` of built-in datasets and
  variants, Spearman's rho between the DCN (seed 0) and the mean held-out accuracy
  of a fixed panel of five IR architectures (:func:`panel_archs`: linear, MLP, small
  CNN, wider CNN, residual CNN; built with ``tapas.core.arch.to_module``), each trained
  with AdamW, warm-up + cosine, for at least 200 optimizer steps (:func:`_panel_recipe`)
  on a stratified 70/30 split (at most 1,000 training and 1,000 test images).
  ``spearman_dcn_vs_panel_normalized`` uses the panel's chance-normalised accuracy.
* ``dcn_spread``: max minus min DCN over the family; ``n_datasets``: family size.

Everything but the speed measurement runs with ``torch.set_num_threads(1)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from probenet.datasets import load_dataset, split, stratified_subsample
from probenet.dcn import PROBE_VERSION, compute_dcn
from probenet.train import Recipe, fit_evaluate
from tapas.core.arch import Architecture, to_module
from tapas.core.lazy import LazyImport

stats = LazyImport("scipy.stats")
torch = LazyImport("torch")

Progress = Callable[[str, int, int], None]

BUILTIN = ("digits", "mnist5k", "mnist1d")
FAMILY = (
    "digits",
    "digits?label_noise=0.2",
    "digits?label_noise=0.5",
    "digits?pixel_noise=0.5",
    "digits?per_class=15",
    "digits?occlude=0.5",
    "mnist5k",
    "mnist5k?label_noise=0.4",
    "mnist5k?downsample=2&pixel_noise=0.6",
    "mnist5k?occlude=0.6",
    "mnist5k?per_class=30",
    "mnist5k?classes=4,9",
    "mnist1d",
    "mnist1d?label_noise=0.3",
    "mnist1d?label_noise=0.6",
    "mnist1d?per_class=100",
)
QUICK_FAMILY = ("digits", "digits?label_noise=0.6", "mnist1d?per_class=30")
SPEED_SPEC = "mnist5k?repeat=2&pixel_noise=0.1"
SPEED_SPEC_RGB = "cmnist?repeat=2&pixel_noise=0.1"


def _stem(shape: list[int]) -> list[dict[str, Any]]:
    """Inputs wider than 10 are average-pooled first by ``ceil(side / 10)`` (28x28 -> 9x9,
    14x14 -> 7x7), which keeps the panel affordable on two CPU cores."""
    side = max(shape[1:])
    return [{"op": "avgpool", "kernel": -(-side // 10)}] if side > 10 else []


def _cbr(out: int, **kw: Any) -> list[dict[str, Any]]:
    return [{"op": "conv", "out": out, "kernel": 3, **kw}, {"op": "bn"}, {"op": "relu"}]


def panel_archs(shape: tuple[int, int, int], k: int) -> dict[str, dict[str, Any]]:
    """Five IR networks of different sizes and kinds for an input ``shape`` and ``k`` classes."""
    s = list(shape)
    stem = _stem(s)
    inp = {"shape": s, "num_classes": k}
    small_side = min(s[1:]) // (stem[0]["kernel"] if stem else 1)

    def pool() -> list[dict[str, Any]]:
        return [{"op": "maxpool", "kernel": 2}] if small_side >= 4 else []

    res = [*stem, *_cbr(32)]
    base = len(res) - 1
    res += [*_cbr(32), {"op": "conv", "out": 32, "kernel": 3}, {"op": "bn"},
            {"op": "add", "inputs": [base, base + 5]}, {"op": "relu"}]
    res += [*pool(), *_cbr(64), {"op": "gap"}, {"op": "linear", "out": k}]
    return {
        "linear": {"input": inp, "layers": [*stem, {"op": "flatten"}, {"op": "linear", "out": k}]},
        "mlp": {"input": inp, "layers": [*stem, {"op": "flatten"}, {"op": "linear", "out": 256},
                                         {"op": "relu"}, {"op": "linear", "out": k}]},
        "cnn-small": {"input": inp, "layers": [*stem, *_cbr(16), *pool(), *_cbr(32),
                                               {"op": "gap"}, {"op": "linear", "out": k}]},
        "cnn-wide": {"input": inp, "layers": [*stem, *_cbr(32), *pool(), *_cbr(64), *_cbr(64),
                                              {"op": "gap"}, {"op": "linear", "out": k}]},
        "resnet": {"input": inp, "layers": res},
    }


def _panel_recipe(n_train: int, min_steps: int) -> Any:
    """Enough epochs for at least ``min_steps`` optimizer steps (small datasets get more
    epochs, so every panel network is trained comparably far), between 4 and 40."""
    bs = 64 if n_train >= 640 else 32
    steps_per_epoch = max(1, n_train // bs)
    epochs = int(np.clip(-(-min_steps // steps_per_epoch), 4, 40))
    return Recipe(epochs=epochs, batch_size=bs, lr=0.005, optimizer="adamw", weight_decay=5e-4,
                  schedule="onecycle")


def panel_accuracy(spec: str, seed: int = 0, panel_train: int = 1000, panel_test: int = 1000,
                   min_steps: int = 200) -> dict[str, float]:
    """Held-out accuracy of each panel network on ``spec`` (same split for all)."""
    ds = load_dataset(spec)
    train, test = split(ds, 0.3, seed=seed)
    train = train.subset(stratified_subsample(train.y, panel_train, seed), train.name)
    test = test.subset(stratified_subsample(test.y, panel_test, seed), test.name)
    out: dict[str, float] = {}
    for name, d in panel_archs(ds.input_shape, ds.num_classes).items():
        module = to_module(Architecture.from_dict(d))
        recipe = _panel_recipe(train.n_samples, min_steps)
        out[name] = fit_evaluate(module, train, test, recipe, seed=seed,
                                 device="cpu").final_accuracy
    return out


def run_benchmark(quick: bool = False, speed_threads: int = 2,
                  progress: Progress | None = None) -> dict[str, Any]:
    """Run every measurement; returns the JSON object (stable keys)."""
    def tick(phase: str, done: int, total: int) -> None:
        if progress is not None:
            progress(phase, done, total)

    t_all = time.perf_counter()
    prev_threads = torch.get_num_threads()
    kw: dict[str, Any] = {"epochs": 1, "max_samples": 300} if quick else {}
    family = QUICK_FAMILY if quick else FAMILY
    builtin = ("digits",) if quick else BUILTIN
    panel_kw: dict[str, Any] = ({"panel_train": 200, "panel_test": 100, "min_steps": 4}
                                if quick else {})
    try:
        # speed
        torch.set_num_threads(speed_threads)
        speed: dict[str, tuple[float, float, int | None, bool]] = {}
        specs = {"28x28": "digits?per_class=30" if quick else SPEED_SPEC,
                 "3x32x32": "photos?per_class=10" if quick else SPEED_SPEC_RGB}
        for i, (geometry, spec) in enumerate(specs.items()):
            ds = load_dataset(spec)
            tick("speed", i, len(specs))
            compute_dcn(ds, seed=0, device="cpu", epochs=1, max_samples=200)  # warm-up
            c0 = time.process_time()
            r = compute_dcn(ds, seed=0, device="cpu", **({"epochs": 1} if quick else {}))
            speed[geometry] = (r.seconds, time.process_time() - c0, r.steps, r.capped)
            max_steps = r.max_steps
        tick("speed", len(specs), len(specs))
        speed_spec = specs["28x28"]
        seconds_10k, cpu_10k = speed["28x28"][:2]
        torch.set_num_threads(1)
        # repeatability
        seed_dcns: dict[str, list[float]] = {}
        dcn0: dict[str, float] = {}
        steps = len(builtin) * 3
        for i, name in enumerate(builtin):
            ds = load_dataset(name)
            seed_dcns[name] = []
            for s in range(3):
                tick("seeds", i * 3 + s, steps)
                seed_dcns[name].append(compute_dcn(ds, seed=s, device="cpu", **kw).dcn)
            dcn0[name] = seed_dcns[name][0]
        tick("seeds", steps, steps)
        stds = {n: float(np.std(v)) for n, v in seed_dcns.items()}
        # meaning
        rows = []
        for i, spec in enumerate(family):
            tick("family", i, len(family))
            ds = load_dataset(spec)
            dcn = dcn0[spec] if spec in dcn0 else compute_dcn(ds, seed=0, device="cpu", **kw).dcn
            accs = panel_accuracy(spec, **panel_kw)
            mean = float(np.mean(list(accs.values())))
            chance = 1.0 / ds.num_classes
            rows.append({"dataset": spec, "dcn": dcn, "panel_mean": mean,
                         "panel_mean_normalized": (mean - chance) / (1 - chance),
                         "panel": accs})
        tick("family", len(family), len(family))
    finally:
        torch.set_num_threads(prev_threads)
    dcns = [r["dcn"] for r in rows]
    rho = float(stats.spearmanr(dcns, [r["panel_mean"] for r in rows]).statistic)
    rho_n = float(stats.spearmanr(dcns, [r["panel_mean_normalized"] for r in rows]).statistic)
    return {
        "dcn_seed_std_max": max(stds.values()),
        "seconds_10k_28x28": seconds_10k,
        "cpu_seconds_10k_28x28": cpu_10k,
        "steps_10k_28x28": speed["28x28"][2],
        "seconds_10k_3x32x32": speed["3x32x32"][0],
        "cpu_seconds_10k_3x32x32": speed["3x32x32"][1],
        "steps_10k_3x32x32": speed["3x32x32"][2],
        "capped_10k_3x32x32": speed["3x32x32"][3],
        "max_steps": max_steps,
        "speed_dataset_3x32x32": specs["3x32x32"],
        "spearman_dcn_vs_panel": rho,
        "spearman_dcn_vs_panel_normalized": rho_n,
        "dcn_spread": float(max(dcns) - min(dcns)),
        "n_datasets": len(rows),
        "n_panel_archs": len(rows[0]["panel"]) if rows else 0,
        "dcn_seed_std": stds,
        "dcn_seeds": seed_dcns,
        "speed_dataset": speed_spec,
        "speed_threads": speed_threads,
        "probe_version": PROBE_VERSION,
        "quick": quick,
        "family": rows,
        "seconds_total": time.perf_counter() - t_all,
    }
