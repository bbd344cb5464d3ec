"""Evaluation: metrics with bootstrap CIs, FOMO25 ranking, and the HTML report.

Importing the package registers every metric in `METRICS` (case-level and segmentation).
"""

from .metrics import HIGHER_IS_BETTER, METRICS, MetricWarning, higher_is_better
from .segmentation import segmentation_case_metrics
from .statistics import bootstrap_ci, mean_sd_over_seeds, paired_bootstrap_diff

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "MetricWarning",
    "bootstrap_ci",
    "higher_is_better",
    "mean_sd_over_seeds",
    "paired_bootstrap_diff",
    "segmentation_case_metrics",
]
