"""The metric engine: embeddings in, a Report of every metric with intervals out.

Pure torch and numpy: nothing here imports models, data, the embedding pipeline, pytest or reports,
so anyone can measure their own vectors (``pytest_modgap.measure_embeddings``).
"""
