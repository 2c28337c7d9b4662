"""Training: typed configs, the trainer, metrics, checkpoints and run reports."""

__all__: list[str] = []
