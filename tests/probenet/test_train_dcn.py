"""Generic training, ProbeNet, the DCN, its caching in a real LDE, and the device policy."""

from __future__ import annotations

import numpy as np
import pytest

from probenet import ProbeNet, Recipe, characterize, compute_dcn, load_dataset, split
from probenet.train import fit_evaluate

FAST = {"epochs": 2, "max_samples": 300}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 5, 8), (3, 2, 3), (1, 28, 28), (2, 40, 17)])
def test_probenet_adapts_to_any_input(shape):
    import torch

    net = ProbeNet(shape[0], 7, input_hw=shape[1:])
    out = net(torch.zeros(4, *shape))
    assert out.shape == (4, 7)
    assert net.width == (32 if np.prod([-(-s // net.stem_factor) for s in shape[1:]]) <= 64
                         else 16)


def test_fit_evaluate_learns_and_is_seeded():
    tr, te = split(load_dataset("digits?per_class=40"), 0.3, seed=0)
    recipe = Recipe(epochs=3, batch_size=32, lr=0.01)
    a = fit_evaluate(ProbeNet(1, 10, input_hw=(8, 8)), tr, te, recipe, seed=5, device="cpu")
    b = fit_evaluate(ProbeNet(1, 10, input_hw=(8, 8)), tr, te, recipe, seed=5, device="cpu")
    assert len(a.curve) == 3 == a.epochs and a.final_accuracy == a.curve[-1]
    assert a.final_accuracy > 0.6  # chance is 0.1
    assert a.curve == b.curve and a.train_loss == b.train_loss
    c = fit_evaluate(ProbeNet(1, 10, input_hw=(8, 8)), tr, te, recipe, seed=6, device="cpu")
    assert c.train_loss != a.train_loss
    assert recipe.to_dict()["optimizer"] == "adamw"


def test_fit_evaluate_trains_ir_networks(digits):
    from tapas.core.arch import Architecture, to_module

    arch = Architecture.from_dict({
        "input": {"shape": [1, 8, 8], "num_classes": 10},
        "layers": [{"op": "conv", "out": 8, "kernel": 3}, {"op": "bn"}, {"op": "relu"},
                   {"op": "maxpool", "kernel": 2}, {"op": "flatten"},
                   {"op": "linear", "out": 10}]})
    tr, te = split(digits, 0.3, seed=1)
    sgd = Recipe(epochs=2, optimizer="sgd", lr=0.05, schedule="cosine", augmentation="shift")
    res = fit_evaluate(to_module(arch), tr, te, sgd, seed=0, device="cpu")
    assert 0.5 < res.final_accuracy <= 1.0 and res.seconds > 0


@pytest.mark.parametrize("bad", [{"epochs": 0}, {"optimizer": "lbfgs"}, {"schedule": "step"},
                                 {"augmentation": "mixup"}, {"lr": 0}])
def test_recipe_validation(bad):
    with pytest.raises(ValueError):
        Recipe(**bad)


def test_dcn_in_unit_range_repeatable_and_documented(digits):
    a = compute_dcn(digits, seed=0, device="cpu", **FAST)
    b = compute_dcn(digits, seed=0, device="cpu", **FAST)
    assert 0.0 <= a.dcn <= 1.0 and a.dcn == b.dcn and a.accuracy == b.accuracy
    assert a.dcn == pytest.approx(max(0.0, (a.accuracy - 0.1) / 0.9))
    assert a.n_test == 300 and a.n_folds == 2 and a.repeats >= 1 and a.epochs == 2
    assert a.device == "cpu" and a.fingerprint == digits.fingerprint and a.seconds > 0
    d = a.to_dict()
    assert {"dcn", "accuracy", "chance", "seed", "epochs", "probe_version", "device",
            "seconds", "n_train", "n_test"} <= set(d)


def test_dcn_orders_easy_above_noisy_labels(digits):
    noisy = load_dataset("digits?label_noise=0.7")
    easy = compute_dcn(digits, seed=0, device="cpu", **FAST).dcn
    hard = compute_dcn(noisy, seed=0, device="cpu", **FAST).dcn
    assert easy > hard + 0.3


def test_cpu_path_when_cuda_absent(digits, monkeypatch, tapas_home):
    import torch

    from tapas.core.config import get_settings

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert compute_dcn(digits, device="auto", epochs=1, max_samples=200).device == "cpu"
    monkeypatch.setenv("TAPAS_DEVICE", "auto")
    get_settings.cache_clear()
    assert compute_dcn(digits, device="settings", epochs=1, max_samples=200).device == "cpu"
    with pytest.raises(RuntimeError, match="no CUDA device"):
        compute_dcn(digits, device="cuda", epochs=1, max_samples=200)


@pytest.mark.slow
def test_characterize_caches_by_fingerprint_in_a_real_store(digits, tapas_home):
    """probenet computes and reuses what it is handed; the pipeline stores the new DCN."""
    from tapas.app.pipeline import Pipeline

    with Pipeline() as app:
        info, first = app.characterize(digits, **FAST)
        assert not first.cached
        row = app.store.dataset_by_fingerprint(digits.fingerprint)
        assert row is not None and row.dcn == pytest.approx(first.dcn) == info.dcn
        assert row.name == "digits" and row.n_classes == 10 and tuple(row.input_shape) == (1, 8, 8)
        assert row.dcn_meta == first.meta and row.source == "probenet"
        # probenet alone reuses the stored row's DCN and writes nothing
        again = characterize(load_dataset("digits"), stored=row, **FAST)
        assert again.cached and again.dcn == pytest.approx(first.dcn)
        assert again.accuracy == first.accuracy and again.seed == first.seed
        _, other_seed = app.characterize(digits, seed=1, **FAST)
        assert not other_seed.cached
        _, forced = app.characterize(digits, seed=1, force=True, **FAST)
        assert not forced.cached and forced.dcn == other_seed.dcn
    # the cache survives reopening the file
    with Pipeline() as app:
        assert app.characterize(digits, seed=1, **FAST)[1].cached


# --- the probe budget (max_steps): bounds the work on large data, leaves small data alone ---

def test_probe_plan_caps_only_long_probes():
    from probenet.dcn import DEFAULT_MAX_STEPS, probe_plan

    # small data trains more epochs (>= 25 steps per epoch asked), untouched by the budget
    assert probe_plan(375, 8, DEFAULT_MAX_STEPS) == probe_plan(375, 8) == (40, 200)
    assert probe_plan(898, 8, DEFAULT_MAX_STEPS) == probe_plan(898, 8) == (15, 210)
    assert probe_plan(2500, 8, DEFAULT_MAX_STEPS) == probe_plan(2500, 8) == (8, 312)
    # 10,000 images (two folds of 5,000): 8 x 78 = 624 steps asked, 400 trained, the
    # last of 6 epochs partial
    assert probe_plan(5000, 8) == (8, 624)
    assert probe_plan(5000, 8, DEFAULT_MAX_STEPS) == (6, 400)
    assert probe_plan(5000, 8, 0) == (8, 624)  # 0: no cap
    assert probe_plan(50_000, 8, DEFAULT_MAX_STEPS) == (1, 400)  # less than one epoch


def _counting(module):
    """Wrap ``module`` so its training-mode forward passes (= optimizer steps) are counted."""
    from torch import nn

    class Counting(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner, self.steps = module, 0

        def forward(self, x):
            self.steps += int(self.training)
            return self.inner(x)

    return Counting()


def test_train_tensors_max_steps_stops_and_is_a_no_op_when_loose(digits):
    import torch

    from probenet.train import train_tensors

    x, y = torch.from_numpy(np.array(digits.x[:300])), torch.from_numpy(np.array(digits.y[:300]))
    recipe = Recipe(epochs=3, batch_size=64)  # 4 steps an epoch, 12 in all
    runs = {}
    for cap in (None, 12, 100, 5):
        net = _counting(ProbeNet(1, 10, input_hw=(8, 8)))
        curve, losses, pred = train_tensors(net, x[:256], y[:256], x[256:], y[256:], recipe,
                                            seed=3, max_steps=cap)
        runs[cap] = (net.steps, curve, losses, pred)
    assert runs[None][0] == 12 and runs[5][0] == 5
    for loose in (12, 100):  # a cap at or above the epochs' steps changes nothing
        assert runs[loose][0] == 12 and runs[loose][1:3] == runs[None][1:3]
        assert torch.equal(runs[loose][3], runs[None][3])
    assert len(runs[5][1]) == len(runs[5][2]) == 2  # one full epoch and a partial one


def test_dcn_budget_caps_the_work_and_spares_small_data(digits):
    # 400 images: 4 repeats x 2 probes of 200 images, 10 epochs of 3 steps = 30 steps each
    full = compute_dcn(digits, seed=0, device="cpu", epochs=2, max_samples=400, max_steps=0)
    assert full.steps == 4 * 2 * 30 and not full.capped and full.max_steps == 0
    loose = compute_dcn(digits, seed=0, device="cpu", epochs=2, max_samples=400, max_steps=30)
    assert (loose.dcn, loose.accuracy, loose.steps) == (full.dcn, full.accuracy, full.steps)
    assert not loose.capped
    capped = compute_dcn(digits, seed=0, device="cpu", epochs=2, max_samples=400, max_steps=7)
    assert capped.steps == 4 * 2 * 7 and capped.capped and capped.max_steps == 7
    assert capped.meta["steps"] == capped.steps and capped.meta["max_steps"] == 7
    assert 0.0 <= capped.dcn <= 1.0
    # the setting is the default budget
    from probenet.dcn import DEFAULT_MAX_STEPS
    from tapas.core.config import Settings

    assert Settings().probe_max_steps == DEFAULT_MAX_STEPS


def test_stored_dcns_from_before_the_budget_still_match_when_it_would_not_bite():
    from types import SimpleNamespace

    from probenet.dcn import PROBE_VERSION, stored_result

    def row(n_train: int, n_test: int, **extra):
        meta = {"method": "probe", "probe_version": PROBE_VERSION, "seed": 0, "epochs": 8,
                "max_samples": 10_000, "n_train": n_train, "n_test": n_test,
                "fingerprint": "f", "accuracy": 0.55, "chance": 0.1, "device": "cpu",
                "seconds": 1.0, "n_folds": 2, "repeats": 1, "num_classes": 10,
                "dataset": "d", **extra}
        return SimpleNamespace(dcn=0.5, dcn_meta=meta, fingerprint="f")

    want = {"probe_version": PROBE_VERSION, "seed": 0, "epochs": 8, "max_samples": 10_000,
            "max_steps": 400}
    # a shipped-database-sized dataset (750 images) probed before the budget: same run
    hit = stored_result(row(375, 750), "f", want)
    assert hit is not None and hit.cached and hit.max_steps is None and hit.steps is None
    # 10,000 images probed before the budget trained 624 steps a probe: not the same run
    assert stored_result(row(5000, 10_000), "f", want) is None
    assert stored_result(row(5000, 10_000), "f", {**want, "max_steps": 0}) is not None
    assert stored_result(row(5000, 10_000, max_steps=400), "f", want) is not None
    assert stored_result(row(5000, 10_000, max_steps=400), "f", {**want, "max_steps": 300}) \
        is None
    # budgets that both leave every probe alone are the same run
    assert stored_result(row(375, 750, max_steps=300), "f", want) is not None
