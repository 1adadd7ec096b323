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
    from tapas.arch import Architecture, to_module

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

    from tapas.config import get_settings

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert compute_dcn(digits, device="auto", epochs=1, max_samples=200).device == "cpu"
    monkeypatch.setenv("TAPAS_DEVICE", "auto")
    get_settings.cache_clear()
    assert compute_dcn(digits, device="settings", epochs=1, max_samples=200).device == "cpu"
    with pytest.raises(RuntimeError, match="no CUDA device"):
        compute_dcn(digits, device="cuda", epochs=1, max_samples=200)


@pytest.mark.slow
def test_characterize_caches_by_fingerprint_in_a_real_store(digits, tapas_home):
    from lde import Store

    with Store() as store:
        first = characterize(digits, store=store, **FAST)
        assert not first.cached
        row = store.dataset_by_fingerprint(digits.fingerprint)
        assert row is not None and row.dcn == pytest.approx(first.dcn)
        assert row.name == "digits" and row.n_classes == 10 and tuple(row.input_shape) == (1, 8, 8)
        again = characterize(load_dataset("digits"), store=store, **FAST)
        assert again.cached and again.dcn == pytest.approx(first.dcn)
        assert again.accuracy == first.accuracy and again.seed == first.seed
        other_seed = characterize(digits, store=store, seed=1, **FAST)
        assert not other_seed.cached
        forced = characterize(digits, store=store, seed=1, force=True, **FAST)
        assert not forced.cached and forced.dcn == other_seed.dcn
    # the cache survives reopening the file
    with Store() as store:
        assert characterize(digits, store=store, seed=1, **FAST).cached
