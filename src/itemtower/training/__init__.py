"""Training: TrainConfig (config.py), the data a run reads (data.py), the TrainTask around the tower (task.py)
and train(cfg) -> model directory (loop.py), the one entry point.

`train` and the data helpers load on first use: the CLI reads TrainConfig's knobs for its options at start-up, and
`itemtower embed` should not pay for importing the training loop (the losses, pytorch-metric-learning)."""

from itemtower.training.config import TrainConfig

__all__ = ["TrainConfig", "split_rows", "teacher_rows", "train"]


def __getattr__(name: str):
    if name == "train":
        from itemtower.training.loop import train

        return train
    if name in ("split_rows", "teacher_rows"):
        from itemtower.training import data

        return getattr(data, name)
    raise AttributeError(f"module 'itemtower.training' has no attribute {name!r}")
