"""The emotion network: data loading, architecture, training, evaluation, export and inference.

Only `model.runtime`, `model.emotions` and `model.preprocess` are used by the live path; they import
no TensorFlow. Everything else is for training and export.
"""
