"""eeg2img-bench. This package is the spine (floor 0: datasets, splits, run store, seeding, devices, weights,
the method interface); its sub-packages `grid` (floor 2) and `cli` (floor 4) sit above methods, metrics and
reports. See docs/architecture.md."""

from eeg2img.errors import LeakageError, UserError, WeightsNotFoundError

__version__ = "0.1.0"

__all__ = ["LeakageError", "UserError", "WeightsNotFoundError", "__version__"]
