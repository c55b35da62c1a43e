"""Sample-quality evaluation: FID, KID, improved precision/recall and Inception score; DTN's
identity retrieval.

:mod:`jgan.evaluation.metrics` and :mod:`jgan.evaluation.retrieval` hold pure float64 host
functions over feature / logit arrays; the feature extractors live in sibling modules.
"""

from jgan.evaluation.metrics import GaussianAccumulator
from jgan.evaluation.metrics import fid_from_features
from jgan.evaluation.metrics import frechet_distance
from jgan.evaluation.metrics import gaussian_statistics
from jgan.evaluation.metrics import inception_score
from jgan.evaluation.metrics import kernel_inception_distance
from jgan.evaluation.metrics import mean_pairwise_distance
from jgan.evaluation.metrics import precision_recall
from jgan.evaluation.retrieval import identity_retrieval
from jgan.evaluation.retrieval import match_ranks

__all__ = [
    "GaussianAccumulator",
    "fid_from_features",
    "frechet_distance",
    "gaussian_statistics",
    "identity_retrieval",
    "inception_score",
    "kernel_inception_distance",
    "match_ranks",
    "mean_pairwise_distance",
    "precision_recall",
]
