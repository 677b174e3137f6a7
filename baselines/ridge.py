"""Multi-output ridge regression with the penalty chosen by efficient leave-one-out (scikit-learn's RidgeCV).

One penalty for all outputs, chosen by the mean leave-one-out error: per-output penalties overfit the
choice on the few hundred trials a fold has.
"""

from __future__ import annotations

import numpy as np

from eeg2img.errors import UserError

DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-1, 5, 13))


def check_alpha(method: str, alpha: float | None) -> float | None:
    if alpha is None:
        return None
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not np.isfinite(alpha) or alpha <= 0:
        raise UserError(f"{method}: alpha={alpha!r} is invalid; pass a number > 0, or None to pick it by leave-one-out")
    return float(alpha)


class RidgeMap:
    """``fit(X, Y)`` then ``predict(X)``; ``alpha=None`` picks the penalty from ``alphas`` by leave-one-out."""

    def __init__(self, alpha: float | None = None, alphas: tuple[float, ...] = DEFAULT_ALPHAS):
        self.alpha = alpha
        self.alphas = alphas

    def fit(self, x: np.ndarray, y: np.ndarray) -> RidgeMap:
        from sklearn.linear_model import Ridge, RidgeCV

        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).reshape(len(x), -1)
        if len(x) < 2:
            raise UserError(f"ridge: needs ≥ 2 training trials, got {len(x)}; widen the training split")
        if self.alpha is None:
            model = RidgeCV(alphas=self.alphas, fit_intercept=True).fit(x, y)
            self.alpha_ = float(model.alpha_)
        else:
            model = Ridge(alpha=self.alpha, fit_intercept=True).fit(x, y)
            self.alpha_ = self.alpha
        self.coef_ = np.asarray(model.coef_, dtype=np.float64)
        self.intercept_ = np.asarray(model.intercept_, dtype=np.float64)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) @ self.coef_.T + self.intercept_).astype(np.float32)
