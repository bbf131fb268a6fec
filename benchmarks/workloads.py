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
    data: str  # "seed": 20,000 train / 10,000 val images; "full": all 60,000 training images
    bias: str  # "input_column" (the seed's bias trick) or "per_layer"
    validations_per_epoch: int  # 0: training only
    mode: str = "train"  # "train", or "validate": the epoch's validation passes alone
    unit_steps: dict[str, int] = field(default_factory=dict)  # by run mode ("quick"/"full"); default: an epoch

    @property
    def n_train(self) -> int:
        return 20_000 if self.data == "seed" else 60_000

    @property
    def n_val(self) -> int:
        return 10_000 if self.data == "seed" else 0

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
    )
}
