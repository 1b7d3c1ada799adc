"""A user's picture -> model input: decoding, ink vs paper, the digit's layout.
Built on `nn` and `data`.
"""
