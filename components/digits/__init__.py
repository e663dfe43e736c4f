"""Digits example: a small CNN on scikit-learn's bundled 8x8 digits.

Trainable: ``components.digits.train:run``; study: ``configs/digits_cnn.yaml``.
"""
