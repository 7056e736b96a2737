"""Runtime layer of the TensorRT pipeline benchmark suite: CUDA resources, backends, approaches."""
