"""Training runs: the run's settings (`settings.RunSettings`), the presets and the
models they build, the run directory and its files (`rundir`), and a whole run as
`nnscratch train` does it (`training.run_training`). Built on everything but `app`.
"""
