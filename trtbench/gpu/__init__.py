"""What runs pipelines on a GPU: the checked CUDA layer, the backends, the shared
pipeline pieces and one module per approach. The judging half (correctness, ordering,
statistics, compare, report) lives beside this package and runs on any machine."""
