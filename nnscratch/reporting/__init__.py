"""Metrics, figures, the training animation and the HTML report page.
Built on `nn`, `data` and `imaging`.
"""
