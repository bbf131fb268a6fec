"""The benchmark's workloads: what is trained, on what data, and what one timed unit is.

Shared by ``run.py`` (the driver) and ``engines.py`` (one worker process per engine).
A *unit* is what a worker runs between two reports; its time is scaled to one epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    hidden: tuple[int, ...]
    activation: str  # mlpkit's name: sigmoid, improved_sigmoid, relu
    init: str  # mlpkit's initializer: uniform (-1, 1) or fan_in_normal
    lr: float
    momentum: float
    batch_size: int
    data: str  # "seed": 20,000 train / 10,000 val; "full": all 60,000 training images; "split": 55,000 / 5,000
    bias: str  # "input_column" (the seed's bias trick) or "per_layer"
    validations_per_epoch: int  # 0: training only
    mode: str = "train"  # "train", or "validate": the epoch's validation passes alone
    unit_steps: dict[str, int] = field(default_factory=dict)  # by run mode ("quick"/"full"); default: an epoch
    # the modern recipe's options (defaults: the seed's plain SGD step)
    optimizer: str = "sgd"  # "sgd" (with ``momentum``) or "adamw" (lr, weight decay 0.01)
    dropout: float = 0.0  # hidden dropout rate
    label_smoothing: float = 0.0
    schedule: str = "none"  # or "cosine": cosine with a half-epoch linear warm-up over SCHEDULE_EPOCHS
    augment: bool = False  # affine + elastic augmentation of each epoch (mlpkit's background feed, both engines)
    engines: tuple[str, ...] = ("mlpkit", "pytorch", "sklearn")  # who can run this workload
    best_torch_threads: bool = False  # PyTorch picks its fastest thread count (up to --threads) before timing

    @property
    def n_train(self) -> int:
        return {"seed": 20_000, "split": 55_000}.get(self.data, 60_000)

    @property
    def n_val(self) -> int:
        return {"seed": 10_000, "split": 5_000}.get(self.data, 0)

    @property
    def steps_per_epoch(self) -> int:
        return self.n_train // self.batch_size

    def steps_per_unit(self, run_mode: str) -> int:
        return self.unit_steps.get(run_mode, self.steps_per_epoch)

    def validations_per_unit(self, run_mode: str) -> int:
        return max(1, self.validations_per_epoch * self.steps_per_unit(run_mode) // self.steps_per_epoch)

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        sizes = [785 if self.bias == "input_column" else 784, *self.hidden, 10]
        return list(zip(sizes[:-1], sizes[1:]))

    def epoch_flops(self) -> dict[str, float]:
        """Floating-point operations of one epoch's matrix products (2 per multiply-add).

        A step: forward z = a W for every layer, dW = a^T delta for every layer, and
        delta W^T for every layer but the first. A validation: forward over the validation
        and the training set.
        """
        macs = [i * o for i, o in self.layer_shapes]
        step = 2 * self.batch_size * (2 * sum(macs) + sum(macs[1:]))
        validation = 2 * (self.n_val + self.n_train) * sum(macs)
        train = self.steps_per_epoch * step if self.mode == "train" else 0.0
        return {"train": float(train), "validation": float(self.validations_per_epoch * validation)}

    def work_flops(self, sparse_steps: bool, sparse_validation: bool, nnz_train: float, nnz_val: float) -> dict:
        """Like ``epoch_flops``, but the multiply-adds mlpkit's chosen path really does: with sparse
        inputs the first layer reads only each row's entries off its column's base (``nnz_*`` per row,
        see mlpkit.engine.sparse), plus the base's own products (base W once per step and per
        256-row validation block; the base's outer product in the weight gradient once per step)."""
        macs = [i * o for i, o in self.layer_shapes]
        fan_in, fan_out = self.layer_shapes[0]
        rest = sum(macs[1:])
        if sparse_steps:  # forward and weight gradient of the first layer on the sparse rows
            first = 2 * (self.batch_size * nnz_train * fan_out + fan_in * fan_out)
            step = 2 * (first + self.batch_size * (2 * rest + rest))
        else:
            step = 2 * self.batch_size * (2 * sum(macs) + rest)

        def forward(rows: int, nnz: float) -> float:
            if not sparse_validation:
                return 2.0 * rows * sum(macs)
            return 2.0 * (rows * (nnz * fan_out + rest) + -(-rows // 256) * fan_in * fan_out)

        validation = forward(self.n_val, nnz_val) + forward(self.n_train, nnz_train)
        train = self.steps_per_epoch * step if self.mode == "train" else 0.0
        return {"train": float(train), "validation": float(self.validations_per_epoch * validation)}


#: The cosine schedule's length (epochs) in the modern workloads; a unit is one epoch either way.
SCHEDULE_EPOCHS = 20

# --quick times a fifth of an epoch per unit (125 steps and 1 validation: the epoch's mix).
SEED = dict(batch_size=32, data="seed", bias="input_column", validations_per_epoch=5, unit_steps={"quick": 125})

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "seed-base", "seed base: [64] sigmoid, uniform init, lr 0.1", (64,), "sigmoid", "uniform", 0.1, 0.0, **SEED
        ),
        Workload(
            "seed-tricks",
            "seed tricks: [64] improved sigmoid, fan-in init, momentum 0.9",
            (64,),
            "improved_sigmoid",
            "fan_in_normal",
            0.02,
            0.9,
            **SEED,
        ),
        Workload(
            "deep10",
            "ten hidden layers of 64, improved sigmoid, momentum 0.9",
            (64,) * 10,
            "improved_sigmoid",
            "fan_in_normal",
            0.02,
            0.9,
            **SEED,
        ),
        Workload(
            "validation",
            "the 5 validation passes of a seed-base epoch alone",
            (64,),
            "sigmoid",
            "uniform",
            0.1,
            0.0,
            **SEED,
            mode="validate",
        ),
        Workload(
            "large",
            "784-1024-1024-10 ReLU, 60,000 images, batch 128, training only",
            (1024, 1024),
            "relu",
            "fan_in_normal",
            0.01,
            0.9,
            batch_size=128,
            data="full",
            bias="per_layer",
            validations_per_epoch=0,
            unit_steps={"quick": 39},
        ),  # 468 = 12 x 39
        *(
            Workload(
                name,
                f"784-1024-1024-10 ReLU, AdamW, dropout 0.2, smoothing 0.1, cosine, batch 128, 55,000/5,000{extra}",
                (1024, 1024),
                "relu",
                "he_normal",
                1e-3,
                0.0,
                batch_size=128,
                data="split",
                bias="per_layer",
                validations_per_epoch=1,  # on the 5,000 validation and 55,000 training images, as fit does
                optimizer="adamw",
                dropout=0.2,
                label_smoothing=0.1,
                schedule="cosine",
                augment=augment,
                # scikit-learn has no AdamW, dropout, smoothing nor schedule; "mlpkit-plain" is
                # mlpkit without the augmentation, in the same rounds (augmented's own target)
                engines=("mlpkit", "mlpkit-plain", "pytorch") if augment else ("mlpkit", "pytorch"),
                best_torch_threads=True,
            )  # a unit is an epoch (429 steps and its validation) in both modes
            for name, extra, augment in (
                ("modern", "", False),
                ("augmented", ", affine + elastic augmentation", True),
            )
        ),
    )
}
