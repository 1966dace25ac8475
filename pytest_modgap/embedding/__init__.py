"""From a model and a data set to cached embeddings, and ``measure()`` on top of the metric engine.

The pipeline (decode, preprocess, encode), the content-keyed cache, GPU preprocessing, progress,
and the model-vs-model comparison that needs encoders.
"""
