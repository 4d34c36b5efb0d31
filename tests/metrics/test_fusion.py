"""Fusion probes: single-view, early and late fusion against sklearn fitted by hand, complementary views, test-time
corruption, determinism of the cross-attention model, and one-line errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from metrics.fusion import _corrupted, fusion_probes
from metrics.sampling import split_indices
from metrics.types import MetricError, MetricResult

N, TRAIN, TEST = 1200, 600, 600
#: Probe settings shared by the fusion call and the hand-fitted references.
PROBE = {"c": 0.5, "max_iter": 200}


def _redundant(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two noisy views that both carry both factors (4 and 5 classes): probes well above chance, far from perfect."""
    rng = np.random.default_rng(seed)
    f = np.column_stack([rng.integers(0, 4, N), rng.integers(0, 5, N)])
    a = np.column_stack([f + 0.8 * rng.normal(size=(N, 2)), rng.normal(size=N)])
    b = np.column_stack([f @ [[1.0, 0.3], [0.2, 1.0]] + 0.8 * rng.normal(size=(N, 2)), rng.normal(size=(N, 2))])
    return a, b, f


def _complementary(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """View a carries factor 0 only (4 classes), view b factor 1 only (5 classes); the other dims are noise."""
    rng = np.random.default_rng(seed)
    f = np.column_stack([rng.integers(0, 4, N), rng.integers(0, 5, N)])
    a = np.column_stack([f[:, 0] + 0.2 * rng.normal(size=N), rng.normal(size=(N, 2))])
    b = np.column_stack([rng.normal(size=(N, 2)), f[:, 1] + 0.2 * rng.normal(size=N)])
    return a, b, f


def _hand_probe(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's probe fitted directly: (test probabilities, classes)."""
    scaler = StandardScaler().fit(x[train])
    with threadpool_limits(limits=1):
        clf = LogisticRegression(C=PROBE["c"], max_iter=PROBE["max_iter"]).fit(scaler.transform(x[train]), y[train])
        return clf.predict_proba(scaler.transform(x[test])), clf.classes_


@pytest.fixture(scope="module")
def redundant() -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], MetricResult]:
    data = _redundant(0)
    return data, fusion_probes(*data, num_train=TRAIN, num_test=TEST, seed=3, epochs=1, **PROBE)


@pytest.fixture(scope="module")
def complementary() -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], MetricResult]:
    data = _complementary(1)
    return data, fusion_probes(*data, num_train=TRAIN, num_test=TEST, **PROBE)


def test_single_views_and_late_fusion_equal_sklearn_by_hand(redundant: Any) -> None:
    (a, b, f), result = redundant
    train, test = split_indices(N, TRAIN, TEST, np.random.default_rng(3))
    acc = result.details["accuracy"]
    late_differs = False
    for k, name in enumerate(result.details["factor_names"]):
        pa, classes = _hand_probe(a, f[:, k], train, test)
        pb, classes_b = _hand_probe(b, f[:, k], train, test)
        np.testing.assert_array_equal(classes, classes_b)
        hand = {
            "view_a": np.mean(classes[pa.argmax(1)] == f[test, k]),
            "view_b": np.mean(classes[pb.argmax(1)] == f[test, k]),
            "late": np.mean(classes[((pa + pb) / 2).argmax(1)] == f[test, k]),
        }
        for method, value in hand.items():
            assert acc[method][name] == value, (method, name)
        late_differs |= hand["late"] not in (hand["view_a"], hand["view_b"])
    assert late_differs  # the average is not just one of the two probes


def test_early_fusion_equals_sklearn_on_the_concatenation(redundant: Any) -> None:
    (a, b, f), result = redundant
    train, test = split_indices(N, TRAIN, TEST, np.random.default_rng(3))
    for k, name in enumerate(result.details["factor_names"]):
        p, classes = _hand_probe(np.hstack([a, b]), f[:, k], train, test)
        assert result.details["accuracy"]["early"][name] == np.mean(classes[p.argmax(1)] == f[test, k])
    assert result.score == pytest.approx(np.mean(list(result.details["accuracy"]["early"].values())), abs=1e-15)
    assert result.details["mean_accuracy"]["early"] == result.score
    # two views with independent noise: early fusion beats the better single view
    assert result.details["fusion_gain"]["early"] > 0.03


def test_complementary_views_need_fusion(complementary: Any) -> None:
    _, result = complementary
    acc, chance = result.details["accuracy"], result.details["chance_accuracy"]
    assert acc["view_a"]["factor_0"] > 0.95 and acc["view_b"]["factor_1"] > 0.95
    assert acc["view_a"]["factor_1"] < chance["factor_1"] + 0.08  # view a knows nothing of factor 1
    assert acc["view_b"]["factor_0"] < chance["factor_0"] + 0.08
    for method in ("early", "late", "intermediate"):
        assert min(acc[method].values()) > 0.9, method
    assert result.details["best_method"] in ("early", "intermediate", "late")
    assert min(result.details["fusion_gain"].values()) > 0.3
    assert result.details["constant"] == [] and "clean_accuracy" not in result.details


def test_noise_on_view_b_at_test_time(complementary: Any) -> None:
    data, clean = complementary
    result = fusion_probes(*data, num_train=TRAIN, num_test=TEST, corrupt=("b", "noise", 10.0), **PROBE)
    acc, before = result.details["accuracy"], clean.details["accuracy"]
    assert result.details["clean_accuracy"] == before  # the same models on the clean test codes
    assert acc["view_a"] == before["view_a"]  # view a untouched, exactly
    for method in ("view_b", "early", "late"):
        assert acc[method]["factor_1"] < before[method]["factor_1"] - 0.3, method
    assert acc["intermediate"]["factor_1"] < before["intermediate"]["factor_1"] - 0.2
    assert result.score == result.details["mean_accuracy"]["early"] and result.details["corrupted_rows"] == TEST


def test_corruptions_do_what_the_docstring_says() -> None:
    rng = np.random.default_rng(0)
    x_train = rng.normal(size=(5000, 3)) * [1.0, 2.0, 0.0] + 5.0
    x_test = rng.normal(size=(4000, 3))
    noisy, rows = _corrupted(x_test, x_train, "noise", 3.0, np.random.default_rng(1))
    assert rows == 4000
    np.testing.assert_allclose((noisy - x_test).std(axis=0), 3.0 * x_train.std(axis=0), rtol=0.03)
    dropped, rows = _corrupted(x_test, x_train, "drop", 0.25, np.random.default_rng(1))
    hit = np.all(dropped != x_test, axis=1)
    assert rows == 1000 and hit.sum() == 1000
    np.testing.assert_array_equal(dropped[hit], np.broadcast_to(x_train.mean(axis=0), (1000, 3)))
    np.testing.assert_array_equal(dropped[~hit], x_test[~hit])


def test_corruption_aware_training_fits_the_probes_on_corrupted_training_codes() -> None:
    """``train_corrupt``: the view-b probe is sklearn's probe fitted on the training codes with the documented rows
    corrupted (rows and noise from ``default_rng((seed, 2))``, σ of the clean training rows), tested on the corrupted
    test codes; view a's probe is untouched."""
    a, b, f = _redundant(2)
    result = fusion_probes(
        a,
        b,
        f,
        num_train=TRAIN,
        num_test=TEST,
        seed=5,
        epochs=1,
        corrupt=("b", "noise", 4.0),
        train_corrupt=0.5,
        **PROBE,
    )
    train, test = split_indices(N, TRAIN, TEST, np.random.default_rng(5))
    b_train = b[train].copy()
    rng = np.random.default_rng((5, 2))
    rows = rng.choice(TRAIN, size=TRAIN // 2, replace=False)
    b_train[rows] += rng.normal(size=(rows.size, b.shape[1])) * (4.0 * b[train].std(axis=0))
    b_test = b[test] + np.random.default_rng((5, 1)).normal(size=(TEST, b.shape[1])) * (4.0 * b[train].std(axis=0))
    for k in range(2):
        scaler = StandardScaler().fit(b_train)
        with threadpool_limits(limits=1):
            clf = LogisticRegression(C=PROBE["c"], max_iter=PROBE["max_iter"]).fit(
                scaler.transform(b_train), f[train, k]
            )
            want = (clf.predict(scaler.transform(b_test)) == f[test, k]).mean()
        assert result.details["accuracy"]["view_b"][f"factor_{k}"] == pytest.approx(want, abs=1e-12)
    assert result.details["corrupted_train_rows"] == TRAIN // 2
    plain = fusion_probes(
        a, b, f, num_train=TRAIN, num_test=TEST, seed=5, epochs=1, corrupt=("b", "noise", 4.0), **PROBE
    )
    assert result.details["accuracy"]["view_a"] == plain.details["accuracy"]["view_a"]


def test_corruption_aware_training_makes_fusion_lean_on_the_clean_view() -> None:
    """Redundant views, view b buried in noise at test time: trained on clean codes, early and late fusion fall below
    view a alone; trained with half of view b's training rows corrupted the same way they recover most of the gap."""
    a, b, f = _redundant(6)
    common: dict[str, Any] = {"num_train": TRAIN, "num_test": TEST, "epochs": 1, "corrupt": ("b", "noise", 10.0)}
    naive = fusion_probes(a, b, f, **common, **PROBE).details["mean_accuracy"]
    aware = fusion_probes(a, b, f, **common, train_corrupt=0.5, **PROBE).details["mean_accuracy"]
    assert naive["early"] < naive["view_a"] - 0.05 and naive["late"] < naive["view_a"] - 0.05
    assert aware["early"] > naive["early"] + 0.05 and aware["late"] > naive["late"] + 0.05


def test_dropping_all_of_view_b_leaves_view_a(complementary: Any) -> None:
    data, clean = complementary
    result = fusion_probes(*data, num_train=TRAIN, num_test=TEST, corrupt=("b", "drop", 1.0), epochs=1, **PROBE)
    acc = result.details["accuracy"]
    assert acc["view_a"] == clean.details["accuracy"]["view_a"]
    assert result.details["corrupted_rows"] == TEST
    # every test row sees view b's training mean: its probe predicts one class, scoring that class's share
    _, test = split_indices(N, TRAIN, TEST, np.random.default_rng(0))
    shares = np.bincount(data[2][test, 1]) / TEST
    assert np.isclose(shares, acc["view_b"]["factor_1"], rtol=0, atol=1e-12).any()
    assert acc["view_b"]["factor_1"] < clean.details["accuracy"]["view_b"]["factor_1"] - 0.5


def test_intermediate_fusion_captures_an_interaction_of_the_views() -> None:
    """The factor is the XOR of a bit in each view: no single view, and no additive (early or late linear) fusion,
    beats chance; the cross-view mixing of the attention layer does."""
    rng = np.random.default_rng(5)
    bit_a, bit_b = rng.integers(0, 2, N), rng.integers(0, 2, N)
    a = np.column_stack([bit_a + 0.1 * rng.normal(size=N), rng.normal(size=N)])
    b = np.column_stack([bit_b + 0.1 * rng.normal(size=N), rng.normal(size=N)])
    result = fusion_probes(a, b, bit_a ^ bit_b, num_train=TRAIN, num_test=TEST, epochs=20)
    mean = result.details["mean_accuracy"]
    assert max(mean["view_a"], mean["view_b"], mean["early"], mean["late"]) < 0.6
    assert mean["intermediate"] > 0.95 and result.details["best_method"] == "intermediate"


def test_intermediate_fusion_is_deterministic_and_leaves_torch_state() -> None:
    a, b, f = _complementary(2)
    kwargs: dict[str, Any] = {"num_train": 400, "num_test": 400, "epochs": 3, "subspaces": [("x", 1), ("y", 2)]}
    torch.manual_seed(123)  # the caller's torch RNG state neither matters nor changes
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    first = fusion_probes(a, b, f, **kwargs)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(456)
    state = torch.get_rng_state()
    second = fusion_probes(a, b, f, **kwargs)
    assert first.details["accuracy"]["intermediate"] == second.details["accuracy"]["intermediate"]
    assert first.details == second.details
    assert torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == threads
    assert first.settings["tokens"] == [2, 2]


def test_a_constant_factor_is_predicted() -> None:
    a, b, f = _complementary(3)
    f = np.column_stack([f, np.full(N, 7)])
    result = fusion_probes(a, b, f, num_train=TRAIN, num_test=TEST, epochs=1, factor_names=["p", "q", "colour"])
    assert result.details["constant"] == ["colour"]
    assert all(result.details["accuracy"][m]["colour"] == 1.0 for m in result.details["accuracy"])


def _bad_cases() -> list[tuple[dict[str, Any], str]]:
    a, b, f = _complementary(4)
    nan_b = b.copy()
    nan_b[3, 1] = np.nan
    ok = {"view_a": a, "view_b": b, "factors": f, "num_train": 100, "num_test": 100}
    return [
        ({**ok, "view_b": b[:-1]}, "view a codes have 1200 rows but view b codes have 1199"),
        ({**ok, "factors": f[:-1]}, "factors have 1199; pass one factor row per input"),
        ({**ok, "view_b": nan_b}, "view b codes contain NaN or inf in 1 of 1200 rows"),
        ({**ok, "factors": f + 0.5}, "factors must be integer class indices"),
        ({**ok, "num_train": 1000, "num_test": 300}, "fusion_probes needs at least 1300 samples but got 1200"),
        ({**ok, "num_test": 0}, "num_train and num_test must be >= 1"),
        ({**ok, "subspaces": ([("x", 3)], [("y", 2)])}, "view b subspace widths sum to 2 but its codes have 3 dims"),
        ({**ok, "subspaces": [("x", 3), ("y", 0)]}, "view a subspace widths must be >= 1"),
        ({**ok, "corrupt": ("c", "noise", 1.0)}, "corrupt view must be 'a' or 'b'"),
        ({**ok, "corrupt": ("b", "blur", 1.0)}, "unknown corruption 'blur'; choose one of noise, drop"),
        ({**ok, "corrupt": ("b", "drop", 1.5)}, "level of 'drop' must be a fraction in \\[0, 1\\]"),
        ({**ok, "corrupt": ("b", "noise")}, "corrupt must be \\(view, kind, level\\)"),
        (
            {**ok, "train_corrupt": 0.5},
            "train_corrupt must be a fraction in \\[0, 1\\] of the training rows, given with",
        ),
        ({**ok, "corrupt": ("b", "drop", 0.5), "train_corrupt": 1.5}, "train_corrupt must be a fraction"),
        ({**ok, "d_model": 30}, "d_model \\(30\\) must be a positive multiple of heads \\(4\\)"),
        ({**ok, "epochs": 0}, "epochs and batch_size must be >= 1 and lr > 0"),
        ({**ok, "factor_names": ["x"]}, "got 1 factor names for 2 factors"),
    ]


@pytest.mark.parametrize(("kwargs", "message"), _bad_cases())
def test_bad_input_gives_one_line(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(MetricError, match=message) as err:
        fusion_probes(**kwargs)
    assert "\n" not in str(err.value)
