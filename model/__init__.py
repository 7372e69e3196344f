"""The emotion network: data loading, architecture, training, evaluation, export and inference.

Only `model.runtime`, `model.litert` and `model.preprocess` are used by the live path
(`model.litert` by the face detector and landmark models too); they import no TensorFlow. Everything else
is for training and export.
"""
