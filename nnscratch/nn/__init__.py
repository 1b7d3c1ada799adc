"""The network core, NumPy only: layers, losses, optimizers, schedules, callbacks,
the `Sequential` model and its file format. Imports nothing of nnscratch outside `nn/`
but `errors` and `files`.
"""
