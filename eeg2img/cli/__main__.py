"""``python -m eeg2img.cli``: the same command line as ``eeg2img``."""

import sys

from eeg2img.cli import main

sys.exit(main())
