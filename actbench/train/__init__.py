"""Training experiments: suites (schema, sweeps), data sets, models, the loop and the run executor."""
