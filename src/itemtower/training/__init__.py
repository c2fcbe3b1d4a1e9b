"""Training: TrainConfig and train(cfg) -> model directory."""

from itemtower.training.config import TrainConfig

__all__ = ["TrainConfig"]
