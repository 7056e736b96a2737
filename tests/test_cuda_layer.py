"""The checked CUDA layer's pure part: error mapping, and what happens without a GPU."""

import pytest

from trtbench.gpu import cuda
from trtbench.gpu.cuda import CudaError, cuda_call, cudart


def test_success_returns_values():
    ok = cudart.cudaError_t.cudaSuccess
    assert cuda_call("op", (ok,)) is None
    assert cuda_call("op", (ok, 7)) == 7
    assert cuda_call("op", (ok, 1, 2)) == (1, 2)


def test_error_raises_with_cuda_name_and_operation():
    with pytest.raises(CudaError) as info:
        cuda_call("cudaMalloc(77 MB)", (cudart.cudaError_t.cudaErrorMemoryAllocation, 0))
    assert info.value.name == "cudaErrorMemoryAllocation"
    assert "cudaMalloc(77 MB) failed: cudaErrorMemoryAllocation" in str(info.value)


def test_bare_error_code_is_checked_too():
    with pytest.raises(CudaError, match="cudaErrorInvalidValue"):
        cuda_call("cudaStreamSynchronize", cudart.cudaError_t.cudaErrorInvalidValue)


@pytest.mark.skipif(cuda.device_count() > 0, reason="checks the no-GPU path; this machine has a GPU")
def test_without_gpu_real_calls_raise_named_errors():
    reason = cuda.no_device_reason()
    assert reason == "no NVIDIA GPU or driver found (cudaErrorInsufficientDriver)" or reason.startswith("no NVIDIA GPU")
    with pytest.raises(CudaError) as info:
        cuda.DeviceBuffer((4, 4))
    assert info.value.operation == "cudaMalloc" and info.value.name.startswith("cudaError")
    assert cuda.device_allocations.current == 0  # nothing recorded for a failed allocation
    with pytest.raises(CudaError, match="cudaStreamCreateWithFlags"):
        cuda.Stream()
