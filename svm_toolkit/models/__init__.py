"""Model architectures (torch modules) the extractors and baselines build."""
