"""The analysis: statistics (`stats`), the decision rule (`rule`), comparisons seed by seed (`comparisons`),
the ladder's numbers (`ladder`), the metrics over stored runs (`metrics`), and `analyze`, the one function
that turns a folder's cells into every comparison, family and flag that anything shows. Numbers and words
only: the sentences are the report's (bench/report/), and nothing here imports it."""

from bench.analysis.folder import Analysis, analyze, folder_analysis

__all__ = ["Analysis", "analyze", "folder_analysis"]
