"""Reference defaults of every metric, in one place.

The values follow disentanglement_lib (Locatello et al. 2019, "Challenging Common Assumptions in the Unsupervised
Learning of Disentangled Representations"), whose gin configs fix the protocol the field reports: 10000 training
samples, 5000 test samples, 20 histogram bins, batch 64 for the voting metrics, seed 0.
Each metric reads its defaults from the frozen dataclass below; callers override per call (keyword arguments) or
through ``dataclasses.replace``. Add fields additively; never change a reference value silently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: Seed every metric uses unless told otherwise.
SEED: int = 0


def _usable_cores(cap: int = 8) -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one), at most ``cap``."""
    sched = getattr(os, "sched_getaffinity", None)
    count = len(sched(0)) if sched is not None else (os.cpu_count() or 1)
    return max(1, min(count, cap))


#: Worker processes for the independent per-factor fits of DCI, explicitness and the probes (metrics/_parallel.py):
#: every usable core, at most 8 (there are rarely more independent fits than that worth a process each). Each fit
#: stays single-threaded, and the results are bit-identical for every value (tests/metrics/test_parallel.py).
#: On cores that other jobs already saturate, 1 is faster (no gain from a second process, plus its start-up): see
#: metrics/dci.py for the measurement.
N_JOBS: int = _usable_cores()


@dataclass(frozen=True)
class MIGDefaults:
    """Mutual Information Gap (Chen et al. 2018) as in disentanglement_lib ``mig.py``."""

    num_train: int = 10000
    num_bins: int = 20
    #: Neighbours of the kNN MI estimator (Ross 2014) used by the binning-free variant.
    n_neighbors: int = 3
    #: Bins per dimension when a multi-dimensional subspace is discretised jointly (subspace-aware MIG).
    subspace_bins_per_dim: int = 8


@dataclass(frozen=True)
class DCIDefaults:
    """Disentanglement, completeness, informativeness (Eastwood & Williams 2018)."""

    num_train: int = 10000
    num_test: int = 5000
    #: "exact" (sklearn's GradientBoostingClassifier() re-implemented in NumPy, metrics/_gbt.py: the reference's D, C
    #: and I to within 0.003, its own tie-breaking noise, ~7x faster), "reference" (sklearn GradientBoostingClassifier,
    #: disentanglement_lib exactly) or "hist" (histogram GBT with split-gain importances: faster still, but off by up to
    #: 0.05 on ordinary codes and more on collapsed units); see metrics/dci.py and scripts/bench_dci_agreement.py.
    method: str = "exact"
    #: OpenMP threads of each tree ensemble (None: the process default); see metrics/dci.py.
    threads: int | None = 1
    #: Processes fitting the per-factor classifiers (see :data:`N_JOBS`).
    n_jobs: int = N_JOBS


@dataclass(frozen=True)
class SAPDefaults:
    """Separated Attribute Predictability (Kumar et al. 2018)."""

    num_train: int = 10000
    num_test: int = 5000
    svm_c: float = 0.01


@dataclass(frozen=True)
class FactorVAEDefaults:
    """FactorVAE score (Kim & Mnih 2018)."""

    batch_size: int = 64
    num_train: int = 10000
    num_eval: int = 5000
    num_variance_estimate: int = 10000
    prune_dims_threshold: float = 0.05


@dataclass(frozen=True)
class BetaVAEDefaults:
    """BetaVAE score (Higgins et al. 2017)."""

    batch_size: int = 64
    num_train: int = 10000
    num_eval: int = 5000
    #: Largest number of grid points handed to the representer in one call (memory cap; does not change the score).
    max_rows_per_call: int = 1 << 20


@dataclass(frozen=True)
class ProbeDefaults:
    """Downstream probes and sample efficiency (Locatello et al. 2019, Sec. 'downstream task')."""

    num_train: tuple[int, ...] = (10, 100, 1000, 10000)
    num_test: int = 5000
    #: "logistic" (LogisticRegressionCV over ``cs``) or "mlp" (MLPClassifier); see metrics/probes.py.
    model: str = "logistic"
    #: Grid of inverse regularisation strengths searched by cross-validation.
    cs: tuple[float, ...] = (0.1, 10.0, 1000.0)
    #: Stratified folds of the cross-validation; training sets with fewer samples of some class use ``fallback_c``.
    cv_folds: int = 3
    #: Cross-validate C only for training sets up to this size; larger ones use max(cs) (see metrics/probes.py).
    cv_max_train: int = 1000
    fallback_c: float = 1.0
    max_iter: int = 100
    #: Hidden layer widths of the MLP probe.
    mlp_hidden: tuple[int, ...] = (256,)
    #: Training samples of each cell of the factor x subspace probe matrix.
    subspace_num_train: int = 2000
    #: Processes fitting the (factor, size) probes and the subspace cells (see :data:`N_JOBS`).
    n_jobs: int = N_JOBS


@dataclass(frozen=True)
class ActivityDefaults:
    """Active units (Burda et al. 2016) and the interventional factor-activity matrix."""

    threshold: float = 0.01
    num_samples: int = 10000


@dataclass(frozen=True)
class ModularityDefaults:
    """Modularity and explicitness (Ridgeway & Mozer 2018)."""

    num_train: int = 10000
    num_test: int = 5000
    num_bins: int = 20
    #: Processes fitting the per-factor explicitness regressions (see :data:`N_JOBS`).
    n_jobs: int = N_JOBS


@dataclass(frozen=True)
class UnsupervisedDefaults:
    """Unsupervised scores of disentanglement_lib ``unsupervised_metrics.py``."""

    num_train: int = 10000
    num_bins: int = 20


MIG = MIGDefaults()
DCI = DCIDefaults()
SAP = SAPDefaults()
FACTOR_VAE = FactorVAEDefaults()
BETA_VAE = BetaVAEDefaults()
PROBES = ProbeDefaults()
ACTIVITY = ActivityDefaults()
MODULARITY = ModularityDefaults()
UNSUPERVISED = UnsupervisedDefaults()


@dataclass(frozen=True)
class UDRDefaults:
    """Unsupervised Disentanglement Ranking (Duan et al. 2020) as disentanglement_lib ``udr/metrics/udr.py``."""

    #: "spearman" (UDR_S: |Spearman correlation|) or "lasso" (UDR_L: |Lasso weights|; disentanglement_lib's default).
    method: str = "spearman"
    #: Regularisation of the Lasso similarity (disentanglement_lib's ``alpha``).
    lasso_alpha: float = 0.1
    #: A latent is informative when its given per-dimension KL exceeds this (disentanglement_lib's filter).
    kl_threshold: float = 0.01
    #: Without KL: informative when its variance over the inputs exceeds this fraction of the model's largest one.
    var_threshold: float = 0.01
    #: Rows drawn (the same rows for every model); None: all. disentanglement_lib's configs encode 1000 points.
    num_samples: int | None = None
    #: "dlib" (mean of the per-column and per-row means) or "paper" (both sums over d_a + d_b); see metrics/udr.py.
    weighting: str = "dlib"


@dataclass(frozen=True)
class ConsistencyDefaults:
    """Cross-seed consistency: held-out R² of maps between two runs' codes (metrics/consistency.py)."""

    #: Rows fitting the maps and rows scoring them; None for both: a seeded half/half split of all rows.
    num_train: int | None = 5000
    num_test: int | None = 5000


UDR = UDRDefaults()
CONSISTENCY = ConsistencyDefaults()


@dataclass(frozen=True)
class DCIESDefaults:
    """Explicitness and size of DCI-ES (Eastwood et al. 2023); see metrics/dci_es.py."""

    num_train: int = 10000
    num_test: int = 5000
    #: Probe capacities: maximum depths of the random-forest probes, every depth from 1 to 32 (the range of the
    #: authors' random-forest probes), on a linear capacity axis.
    capacities: tuple[int, ...] = tuple(range(1, 33))
    #: Trees of each random-forest probe.
    num_trees: int = 25
    #: Features tried at each split (sklearn's ``max_features``); None: all of them (bagged trees).
    max_features: str | float | None = None
    #: "cross_entropy" (test log-loss) or "error" (test 0-1 loss, the authors' 1 - accuracy).
    loss: str = "cross_entropy"
    #: The lowest achievable loss l*, in units of the baseline loss (0: the factor is a function of the observation).
    lowest_loss: float = 0.0
    #: OpenMP/BLAS threads of each fit (None: the process default).
    threads: int | None = 1
    #: Processes fitting the per-factor probes (see :data:`N_JOBS`).
    n_jobs: int = N_JOBS


DCI_ES = DCIESDefaults()


@dataclass(frozen=True)
class IRSDefaults:
    """Interventional Robustness Score (Suter et al. 2019) as disentanglement_lib ``irs.py``; see metrics/irs.py."""

    num_train: int = 10000
    #: Quantile of the within-group deviations (disentanglement_lib's default; 1.0 is the paper's maximum).
    diff_quantile: float = 0.99
    #: Equal-width bins of disentanglement_lib's histogram discretizer applied to the factor classes (None: none).
    num_bins: int | None = 20


@dataclass(frozen=True)
class OMESDefaults:
    """Overlap Multiple Encoding Scores (Dapueto et al. 2024) as the authors' ``omes.py``; see metrics/omes.py."""

    #: Encoded samples the pairs are mined from: the authors' postprocessing encodes at least 15000 images.
    num_train: int = 15000
    #: At most this many pairs per factor (the authors' ``random_samples`` cap).
    num_pairs: int = 100000
    #: Weight of the overlap score; 1 - alpha weighs the multiple-encoding score.
    alpha: float = 0.5
    #: "avg" (association-weighted mean over latents) or "max" (best latent).
    pooling: str = "avg"
    #: Latents whose standard deviation over the sample is below this are inactive and dropped.
    active_threshold: float = 0.05


IRS = IRSDefaults()
OMES = OMESDefaults()


@dataclass(frozen=True)
class ContinuousDefaults:
    """MIG, DCI and probes for real-valued factors (metrics/continuous.py)."""

    num_train: int = 10000
    num_test: int = 5000
    #: Neighbours of the KSG estimator (Kraskov et al. 2004; sklearn's ``mutual_info_regression`` default).
    n_neighbors: int = 3
    #: Replace codes and factors by their normal scores (ranks) before the MI estimates: MIG then does not change
    #: under strictly monotone maps of a code (metrics/continuous.py).
    ranks: bool = True
    #: MIG normaliser: "bins" (entropy of equal-frequency factor bins; Ross kNN MI) or "self" (KSG self-information).
    mig_normalise: str = "bins"
    #: Equal-frequency bins of each factor for the "bins" normaliser (disentanglement_lib's 20 bins).
    mig_num_bins: int = 20
    #: Ridge penalties searched by efficient leave-one-out cross-validation for the linear probe (standardised inputs).
    ridge_alphas: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)
    #: Hidden layer widths of the MLP probe (as ``ProbeDefaults.mlp_hidden``).
    mlp_hidden: tuple[int, ...] = (256,)
    mlp_max_iter: int = 200
    #: Processes fitting the per-factor regressors (see :data:`N_JOBS`).
    n_jobs: int = N_JOBS


CONTINUOUS = ContinuousDefaults()


@dataclass(frozen=True)
class TransferDefaults:
    """Domain gap and transfer probes between two domains' codes of the same inputs (metrics/transfer.py)."""

    #: Inputs whose codes (in both domains) train the domain classifier / the probes, and other inputs that test them.
    num_train: int = 5000
    num_test: int = 5000
    #: Test inputs per domain in the MMD estimate (its cost is quadratic).
    mmd_samples: int = 2000
    #: Gaussian kernel bandwidths of the MMD, in units of the pooled sample's median pairwise distance.
    bandwidth_scales: tuple[float, ...] = (0.5, 1.0, 2.0)
    #: Inverse regularisation of the transfer probes' logistic regression (standardised codes).
    c: float = 1.0


TRANSFER = TransferDefaults()


@dataclass(frozen=True)
class FusionDefaults:
    """Single-view probes and early, intermediate and late fusion of two views' codes (metrics/fusion.py)."""

    #: Inputs whose codes (in both views) train every model, and other inputs that test them.
    num_train: int = 5000
    num_test: int = 5000
    #: Inverse regularisation and lbfgs budget of the logistic probes (standardised codes), as TransferDefaults.
    c: float = 1.0
    max_iter: int = 500
    #: The cross-attention model of intermediate fusion: token width, attention heads per direction, and its training
    #: (Adam, shuffled minibatches).
    d_model: int = 32
    heads: int = 4
    epochs: int = 60
    batch_size: int = 128
    lr: float = 3e-3
    #: torch threads while it trains (restored afterwards; None: leave torch's setting).
    threads: int | None = 1


FUSION = FusionDefaults()
