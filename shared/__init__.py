"""Code every service shares: the model, class names, preprocessing, data access and checkpoint format.

Keeping these in one package is what makes training-time and serving-time behaviour identical.
"""
