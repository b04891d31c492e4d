"""analysis layer: global rankings with bootstrap intervals, univariate power, identifiers, agreement, convergence.

Pure numpy on arrays; no torch. See each module for the method and its reference.
"""

from audit.analysis.agreement import drift, ks_statistic, rank_agreement, slice_profiles, spearman
from audit.analysis.convergence import summarize_convergence
from audit.analysis.identifiers import identifier_like
from audit.analysis.ranking import class_rankings, global_ranking
from audit.analysis.univariate import univariate_power

__all__ = [
    "global_ranking",
    "class_rankings",
    "univariate_power",
    "identifier_like",
    "spearman",
    "rank_agreement",
    "slice_profiles",
    "ks_statistic",
    "drift",
    "summarize_convergence",
]
