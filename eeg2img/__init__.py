"""eeg2img-bench: the spine — datasets, splits, run store, weights resolution, configuration, CLI."""

from eeg2img.errors import LeakageError, UserError, WeightsNotFoundError

__version__ = "0.1.0"

__all__ = ["LeakageError", "UserError", "WeightsNotFoundError", "__version__"]
