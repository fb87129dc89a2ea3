"""Evaluation, in one package: ground-truth clips (clip_specs, performances, clip_making),
metrics (metrics, truth_metrics, real_metrics, evaluate) and the suite that runs every tracker
on every clip (suite_methods, suite_cache, suite, suite_report)."""
