"""Typed configuration of a training run: one dataclass per section, validated by jsonargparse (see :mod:`.cli`).

Every key has a default, so a YAML file only names what it changes. Loss terms live under ``objective``; a term is on
when its ``weight`` is non-zero. ``model.subspaces`` uses the :meth:`SubspaceSpec.parse` syntax
(``"shape=2,scale=1,free=2"``: names starting with ``free`` are untied, the others tie to the same-named factor).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

PairMode = Literal["share_one", "change_one", "random_subset", "change_k", "single"]
Supervision = Literal["labels", "pairs", "augment"]


def default_augment() -> dict[str, Any]:
    """The augmenter of ``data.supervision: augment`` on dSprites-like data (see :mod:`disco.data.augment`)."""
    return {
        "factors": {"orientation": "rotation", "position": "translation", "scale": "zoom"},
        "p_change": 0.5,
        "content": "content",
    }


@dataclass
class ScheduleConfig:
    """How a term's weight evolves with the step (see :mod:`disco.train.schedules`).

    ``constant``: always the weight. ``linear``: from ``start``·weight to ``end``·weight over ``warmup_steps`` (after
    ``delay_steps`` at ``start``; ``end`` defaults to 1, and ``start`` > ``end`` decays the term). ``cyclic``: the
    cyclical annealing of Fu et al. 2019 (NAACL): ``cycles`` ramps from ``start`` to 1 over ``ratio`` of each cycle of
    ``period`` steps, then flat at 1.
    """

    kind: Literal["constant", "linear", "cyclic"] = "constant"
    start: float = 0.0
    warmup_steps: int = 0
    delay_steps: int = 0
    period: int = 10000
    ratio: float = 0.5
    end: float = 1.0


@dataclass
class ContrastiveConfig:
    """Per-subspace contrastive term (NT-Xent of Chen et al. 2020 restricted to the subspace of each shared factor).
    With factor classes (``labels``) and ``mask_same_value``, same-value candidates are ``positive`` (SupCon) or only
    ``exclude``-d from the negatives (removes false negatives without adding positives). ``weights``: per-subspace
    weights (default 1). ``kernel``: per subspace, the width (fraction of its factor's range) of a Gaussian kernel on
    the two views' factor values that makes every candidate a partial positive (y-aware InfoNCE, Dufumier et al. 2021;
    labels only); ``cyclic``: subspaces whose factor wraps around, for that distance."""

    weight: float = 1.0
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    temperature: float = 0.1
    similarity: Literal["auto", "cosine", "neg_sq_dist"] = "auto"
    symmetric: bool = True
    mask_same_value: bool = True
    same_value: Literal["positive", "exclude"] = "positive"
    gather_distributed: bool = True
    weights: dict[str, float] = field(default_factory=dict)
    kernel: dict[str, float] = field(default_factory=dict)
    cyclic: list[str] = field(default_factory=list)


@dataclass
class LocalisationConfig:
    """Change localisation: a pair's code should change only in the subspaces of the factors that changed
    (:mod:`disco.losses.localisation`). ``energy: log`` scores the changed subspace's share of the change energy
    (scale-free, with a gradient that does not vanish at a collapsed subspace); ``include_free``: free subspaces
    compete too."""

    weight: float = 0.0
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    temperature: float = 1.0
    include_free: bool = True
    energy: Literal["squared", "log"] = "squared"
    eps: float = 1e-3


@dataclass
class InvarianceConfig:
    """Per-subspace invariance: squared distance of a pair's views in the subspaces of the factors they share
    (VICReg's invariance term per subspace, :mod:`disco.losses.invariance`); pair it with ``variance``."""

    weight: float = 0.0
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)


@dataclass
class EquivarianceConfig:
    """Equivariance of each augmented factor's subspace to the augmentation's parameter (``data.supervision:
    augment`` only; :mod:`disco.losses.equivariance`). ``factors``: which tagged factors (default: every one with a
    continuous parameter and a subspace); ``scale``: code units per full parameter range (radius for angles)."""

    weight: float = 0.0
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    scale: float = 2.0
    factors: list[str] = field(default_factory=list)


@dataclass
class VarianceConfig:
    """Variance floor on the units of the tied subspaces (``all_units``: every unit), VICReg's hinge on the batch
    standard deviation (:mod:`disco.losses.variance`): keeps a subspace whose factor is not yet seen from collapsing."""

    weight: float = 0.0
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    gamma: float = 1.0
    all_units: bool = False


@dataclass
class IndependenceConfig:
    """Mutual-information penalty between subspaces; ``club`` and ``tc`` train an auxiliary net with ``optim.aux_lr``.
    ``kwargs`` go to :class:`~disco.losses.independence.SubspaceIndependence` (e.g. ``per_dimension: true`` with ``tc``
    is FactorVAE's total correlation over single dimensions, Kim & Mnih 2018)."""

    weight: float = 0.0
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    estimator: Literal["dcor", "hsic", "crosscov", "club", "tc"] = "dcor"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class VAEConfig:
    """β-VAE branch (Higgins et al. 2017); ``capacity_max`` gives the annealed VAE of Burgess et al. 2018 and ``tc_beta``
    the β-TCVAE of Chen et al. 2018. ``weight`` scales the whole ELBO term. ``other_terms_read``: the codes every other
    code term (contrastive, localisation, equivariance, variance, independence) reads while the branch is on: its
    sampled codes ``mean + σ·ε`` (``sample``, the former behaviour) or the encoder means (``mean``)."""

    weight: float = 0.0
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    beta: float = 1.0
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    capacity_max: float | None = None
    capacity_gamma: float = 1000.0
    capacity_steps: int = 100000
    tc_beta: float | None = None
    other_terms_read: Literal["sample", "mean"] = "sample"


@dataclass
class WeakVAEConfig:
    """Ada-GVAE / Ada-ML-VAE on pairs (Locatello et al. 2020; :mod:`disco.losses.weak_vae`): in the dimensions a pair
    shares both views' posteriors are replaced by their aggregate (``gvae``: average; ``mlvae``: product of experts).
    ``shared``: ``adaptive`` infers the shared dimensions from the KL between the views' posteriors (reads only that the
    images form a pair); ``labels`` takes the subspaces tied to the factors the pair shares (reads ``shared``)."""

    weight: float = 0.0
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    beta: float = 1.0
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    aggregation: Literal["gvae", "mlvae"] = "gvae"
    shared: Literal["adaptive", "labels"] = "adaptive"


@dataclass
class SupervisedConfig:
    """Supervised ceiling (:mod:`disco.losses.supervised`): one ``head`` per tied subspace predicts its factor from
    that subspace alone on both views' classes (``linear`` or ``mlp``: cross-entropy; ``regression``: the L2 loss on
    standardised class indices); needs ``data.supervision: labels``. A reference for what the data and encoder allow,
    not a disentanglement method. ``subspaces``: only these tied subspaces get a head (default: all), e.g. an auxiliary
    classifier for one factor beside the contrastive term."""

    weight: float = 0.0
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    head: Literal["linear", "mlp", "regression"] = "regression"
    subspaces: list[str] = field(default_factory=list)


@dataclass
class AuxiliaryConfig:
    """Trunk-level auxiliary classifiers (:mod:`disco.losses.auxiliary`): a linear softmax head per factor in
    ``factors`` on the encoder's hidden features (not the code), on both views' classes; needs
    ``data.supervision: labels`` and an encoder with ``encode_with_hidden`` (``conv64``, ``resnet64``)."""

    weight: float = 0.0
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    factors: list[str] = field(default_factory=list)


AlignmentKind = Literal[
    "mmd", "coral", "dann", "moco", "margin", "triplet", "center", "factor_nce", "domain_head", "prior"
]


@dataclass
class AlignmentTermConfig:
    """One alignment term (see :mod:`disco.train.alignment`; ``kind`` picks the loss).

    Batch-level, between the source codes of the step (view a of the pair batch) and the target codes (view b of the
    cross-domain pairs): ``mmd`` (multi-kernel, unbiased), ``coral``, ``dann`` (domain discriminator + gradient
    reversal with Ganin's λ(p) ramp). Instance-level, on the cross-domain pairs: ``moco`` (InfoNCE with a queue and a
    momentum encoder), ``margin`` (contrastive with margin), ``triplet`` (with a miner), ``center`` (center loss and
    its classification head per factor; needs ``data.supervision: labels``), ``factor_nce`` (disco's per-subspace
    contrastive loss on the cross-domain pairs, which share every factor; class positives under labels).
    ``domain_head``: a domain classifier on the PRIVATE subspaces (it keeps the domain there). ``prior``: MMD (or
    CORAL, ``kwargs.loss``) of all codes against samples of N(0, I) (InfoVAE, Zhao et al. 2019; needs no target).

    ``subspaces``: the names the term acts on (their columns concatenated); ``null`` = every subspace except the
    private ones (names starting with ``domain``), or the private ones for ``domain_head``. ``kwargs`` go to the loss.
    """

    kind: AlignmentKind = "mmd"
    weight: float = 1.0
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    subspaces: list[str] | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ObjectiveConfig:
    """The loss terms; the attribute names are the keys of :data:`disco.train.objective.TERMS`."""

    contrastive: ContrastiveConfig = field(default_factory=ContrastiveConfig)
    localisation: LocalisationConfig = field(default_factory=LocalisationConfig)
    invariance: InvarianceConfig = field(default_factory=InvarianceConfig)
    equivariance: EquivarianceConfig = field(default_factory=EquivarianceConfig)
    variance: VarianceConfig = field(default_factory=VarianceConfig)
    independence: IndependenceConfig = field(default_factory=IndependenceConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    weak_vae: WeakVAEConfig = field(default_factory=WeakVAEConfig)
    supervised: SupervisedConfig = field(default_factory=SupervisedConfig)
    auxiliary: AuxiliaryConfig = field(default_factory=AuxiliaryConfig)
    alignment: list[AlignmentTermConfig] = field(default_factory=list)


@dataclass
class TargetConfig:
    """The target of a transfer run: the training data under another domain shift (``domain``, e.g. ``noisy``; see
    :mod:`disco.data.domains`), or another file (``dataset``; matched to the source's grid points by factor classes
    when it holds the same grid). Every training step draws as many cross-domain pairs as ``data.batch_size``
    (:class:`~disco.data.sources.cross_domain.CrossDomainPairSource`). ``labelled``: the objective may see the target
    view's factor classes (only at ``data.supervision: labels``). ``seed`` seeds the target domain's draws."""

    domain: str | None = None
    dataset: str | None = None
    labelled: bool = False
    seed: int = 1

    @property
    def enabled(self) -> bool:
        return self.domain is not None or self.dataset is not None


@dataclass
class DataConfig:
    """Dataset (a name such as ``dsprites`` or a file path), what the learner may see, and how pairs are made.

    ``supervision`` (see :mod:`disco.data.supervision`): ``labels`` (pairs + factor classes), ``pairs`` (``shared``
    only) or ``augment`` (images only; pairs from the factor-tagged augmenter configured by ``augment``). ``source``
    picks a pair source by name (:data:`disco.data.sources.SOURCES`); ``null`` takes the level's default (``grid`` for
    labels and pairs, ``augment`` for augment). ``pair_mode`` and ``change_k`` configure the grid source;
    ``pair_group`` > 1 draws the batch as groups of that many pairs with one anchor image and one chosen factor each
    (the pairs carry the anchor's identity in ``ids``, so images a group shares a factor with are known to share it).

    Pairs are drawn from the ``train`` part of :func:`disco.data.splits.split_indices` (seed ``split_seed``); evaluation
    scores the held-out ``test`` part. ``batch_size`` is per device (a DDP run of N devices steps on N× as many pairs).

    ``domain`` renders the training images in a domain shift (:mod:`disco.data.domains`, seed ``domain_seed``); with an
    RGB ``target`` (:class:`TargetConfig`: a domain, or a 3-channel file) and no ``domain`` a grey source is rendered
    ``plain`` (RGB), so both domains have three channels. The evaluation scores the held-out rows in the source
    domain.

    ``symmetries`` (:mod:`disco.data.symmetry`): factor classes that show the same image depending on another factor,
    e.g. ``{orientation: {by: shape, period: [9.75, 19.5, 39.0]}}`` on dSprites; with labels, the contrastive term
    counts such views as same-value views and the auxiliary head accepts any of the equivalent classes. Metrics are
    unchanged (they score the classes as given).
    """

    dataset: str = "dsprites"
    split_seed: int = 0
    supervision: Supervision = "labels"
    source: str | None = None
    pair_mode: PairMode = "share_one"
    change_k: int = 1
    pair_group: int = 1
    augment: dict[str, Any] = field(default_factory=default_augment)
    batch_size: int = 64
    steps_per_epoch: int = 1000
    domain: str | None = None
    domain_seed: int = 0
    target: TargetConfig = field(default_factory=TargetConfig)
    symmetries: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """Encoder/decoder by factory name (:func:`disco.models.factory.build_encoder`) and the subspace split.

    ``microbatch``: the training step runs the encoder over both views, and the decoder over their codes, in
    micro-batches of this many images (:func:`disco.models.microbatch.microbatched`; same loss and gradients up to
    float rounding). ``auto``: 64 on CPU, where conv nets are ~30% cheaper per image in chunks of 64, and one pass on
    GPUs and other accelerators; ``null`` or 0: always one pass.
    ``private_branch``: the private subspaces (names starting with ``domain``) are computed by a small encoder of
    their own (:class:`disco.models.private.PrivateBranchEncoder`, Domain Separation Networks), not by the shared one.
    ``private_pool``: how that branch pools its feature maps: ``avg`` (global average of the last layer), ``style``
    (per-channel mean and standard deviation of every layer, the instance statistics that domain shifts move) or
    ``logstyle`` (their logarithms, which turn a colour cast into a shift a linear layer reads at any sprite size).
    ``shared_input``: what the shared encoder of a private-branch model reads: ``raw`` (the image) or ``greyworld``
    (the image divided by its per-channel mean, :class:`disco.models.colour.GreyWorld`, blind to a colour cast).
    """

    encoder: str = "conv64"
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    decoder: str = "conv64"
    decoder_kwargs: dict[str, Any] = field(default_factory=dict)
    subspaces: str = "shape=2,scale=1,orientation=2,pos_x=1,pos_y=1,free=3"
    microbatch: int | Literal["auto"] | None = "auto"
    private_branch: bool = False
    private_pool: Literal["avg", "style", "logstyle"] = "avg"
    shared_input: Literal["raw", "greyworld"] = "raw"

    def __post_init__(self) -> None:
        if isinstance(self.microbatch, int) and self.microbatch < 0:
            raise ValueError(f"model.microbatch must be auto, null or an int >= 0, got {self.microbatch}")
        if self.shared_input != "raw" and not self.private_branch:
            raise ValueError(
                f"model.shared_input {self.shared_input} needs model.private_branch: true (the private subspaces must "
                "still read the raw image); set it, or use shared_input: raw"
            )


@dataclass
class OptimConfig:
    """Adam for the model; ``aux_lr``/``aux_betas``/``aux_steps`` for auxiliary nets (CLUB, TC discriminator).
    ``lr_schedule``: the model's rate after ``warmup_steps`` of linear warmup, ``constant`` or ``cosine`` down to
    ``min_lr_ratio * lr`` at ``trainer.max_steps`` (:mod:`disco.train.lr_schedule`)."""

    lr: float = 1e-4
    lr_schedule: Literal["constant", "cosine"] = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    grad_clip: float | None = None
    aux_lr: float = 1e-4
    aux_betas: list[float] = field(default_factory=lambda: [0.5, 0.9])
    aux_steps: int = 1


@dataclass
class TrainerConfig:
    """Lightning Trainer settings; ``precision: bf16-mixed`` on GPU, ``strategy: ddp`` for several devices/nodes.

    ``max_minutes``: wall-clock budget; training stops at ``max_steps`` or when it runs out (then the final evaluation
    and checkpoint still happen).

    ``nan_check_every``: how often (steps) the accumulated non-finite flag is read on the host (one sync each time; a
    checkpoint save always checks first, so a saved checkpoint is never poisoned).
    """

    max_steps: int = 20000
    max_minutes: float | None = None
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    log_every_n_steps: int = 50
    nan_check_every: int = 100
    progress_bar: bool = True
    deterministic: bool = False


@dataclass
class CheckpointConfig:
    """Periodic checkpoints every ``every_n_steps`` (``keep``: how many to keep, -1 all) plus ``last.ckpt``."""

    every_n_steps: int = 1000
    keep: int = 2
    save_last: bool = True


@dataclass
class EvalConfig:
    """Held-out evaluation through :func:`metrics.suite.run_suite`: ``periodic`` metrics every ``every_n_steps``
    (0 disables), the ``final`` suite at the end (empty list: every metric that applies to the data; ``at_end: false``
    skips it).

    ``factor_map`` ties subspaces to the dataset's factors when their names differ, e.g. a run trained with
    ``supervision: augment`` on a labelled replica: ``{position: [pos_x, pos_y], orientation: [orientation]}``; the
    subspace-aware scores (``mig_subspace`` named gaps, activity exclusivity) then use it. Data without factors is
    scored with the unsupervised metrics and the augmentation activity matrix (``augment_pairs`` pairs per tagged
    augmentation).
    """

    every_n_steps: int = 2000
    at_end: bool = True
    periodic: list[str] = field(default_factory=lambda: ["mig", "activity", "probes"])
    final: list[str] = field(default_factory=list)
    num_samples: int = 10000
    images: bool = True
    traversal_steps: int = 8
    overrides: dict[str, Any] = field(default_factory=dict)
    factor_map: dict[str, list[str]] = field(default_factory=dict)
    augment_pairs: int = 1000


@dataclass
class WandbConfig:
    """Weights & Biases through Lightning's WandbLogger; ``mode: auto`` is offline unless a login is configured."""

    project: str = "disco"
    entity: str | None = None
    mode: Literal["auto", "online", "offline"] = "auto"
    tags: list[str] = field(default_factory=list)


@dataclass
class TrainConfig:
    """A whole training run.

    ``overwrite``: a fresh run (not ``--resume``) refuses a ``run_dir`` whose ``checkpoints/`` already holds checkpoints
    of an earlier run unless this is true; then they are replaced.
    """

    seed: int = 0
    run_dir: str = "runs/disco"
    overwrite: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: Literal["wandb", "csv", "none"] = "wandb"
    wandb: WandbConfig = field(default_factory=WandbConfig)


def to_plain(cfg: TrainConfig) -> dict[str, Any]:
    """The config as nested dicts/lists/str/numbers only (safe for ``torch.load(weights_only=True)`` and W&B)."""
    return _plain(asdict(cfg))


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return str(obj)
