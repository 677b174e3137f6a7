"""Reference points around NeuroImagen: floors, oracles, retrieval, direct regression and generative baselines.

Importing the package registers every method with :func:`eeg2img.methods.register`; nothing is trained or
loaded until ``fit``. See ``docs/baselines.md``.
"""

from baselines import brain2image, floors, retrieval  # noqa: F401  (imported for registration)
