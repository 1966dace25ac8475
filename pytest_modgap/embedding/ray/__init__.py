"""The Ray path: a measurement's embeddings as a Ray Data job on a cluster (``embed``), and what it is
built of: connecting (``cluster``, which asks a port what it is with ``port_probe`` and keeps Ray's
own output quiet with ``logs``), the plan, the actors, the replicas, the job and its errors.

Nothing here imports ``ray`` at import time, and nothing here imports ``embedding.measurement``:
the measurement calls into this package, never the other way round.
"""
