"""Reference points around NeuroImagen: floors, oracles, retrieval, direct regression and generative baselines.

Importing the package registers every method with :func:`eeg2img.methods.register`; nothing is trained or
loaded until ``fit``. See ``docs/baselines.md``.
"""

# Imported for their @register side effect.
from baselines import brain2image, contrastive, dreamdiffusion, floors, latent_ridge, oracles, retrieval  # noqa: F401
