"""What users run on a trained model: predict and the web app (Starlette) with its
static page. Built on every package but `cli`.
"""
