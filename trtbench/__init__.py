"""TensorRT pipeline benchmark suite.

``trtbench.gpu`` runs pipelines on a GPU (CUDA layer, backends, approaches); the modules
beside it judge what was measured on any machine (``correctness``, ``ordering``,
``stats``, ``compare``, ``report``) or prepare it (``model``, ``engines``).
"""
