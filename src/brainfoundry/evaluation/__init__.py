"""Evaluation: metrics with bootstrap CIs, FOMO25 ranking, and the HTML report.

Importing the package registers every metric in `METRICS` (case-level and segmentation).
"""

from .metrics import HIGHER_IS_BETTER, METRICS, MetricWarning, higher_is_better
from .ranking import fomo25_ranking, metric_ranks
from .report import check_predictions, summarize, write_report
from .segmentation import segmentation_case_metrics
from .statistics import bootstrap_ci, case_mean, mean_sd_over_seeds, paired_bootstrap_diff

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "MetricWarning",
    "bootstrap_ci",
    "case_mean",
    "check_predictions",
    "fomo25_ranking",
    "higher_is_better",
    "mean_sd_over_seeds",
    "metric_ranks",
    "paired_bootstrap_diff",
    "segmentation_case_metrics",
    "summarize",
    "write_report",
]
