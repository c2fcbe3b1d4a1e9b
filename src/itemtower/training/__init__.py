"""Training: TrainConfig (config.py), the data a run reads (data.py), the TrainTask around the tower (task.py)
and train(cfg) -> model directory (loop.py), the one entry point."""

from itemtower.training.config import TrainConfig
from itemtower.training.data import split_rows, teacher_rows
from itemtower.training.loop import train

__all__ = ["TrainConfig", "split_rows", "teacher_rows", "train"]
