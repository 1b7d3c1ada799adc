"""Datasets: the IDX format, the dataset catalog, loading, downloading, augmentation.
Built on `nn` only.
"""
