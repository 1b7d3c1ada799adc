"""scikit-learn estimators: `from nnscratch.sklearn import NeuralNetClassifier`.

The public path of `app.sklearn` (where they live, beside the other tools built on
the network); it needs the extra: `pip install 'nnscratch[sklearn]'`.
"""

from .app.sklearn import (
    NeuralNetClassifier,
    NeuralNetRegressor,
    expected_failed_checks,
)

__all__ = ["NeuralNetClassifier", "NeuralNetRegressor", "expected_failed_checks"]
