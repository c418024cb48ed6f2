"""Kernel-test setup: the Triton interpreter on CPU, and backend isolation between tests."""
import os
import zlib

# Triton picks interpreted or compiled kernels when they are decorated, i.e. when
# the kernel modules are imported; this conftest runs before any test module does.
os.environ.setdefault('TRITON_INTERPRET', '1')

import pytest  # noqa: E402
import torch  # noqa: E402

import kernels  # noqa: E402


@pytest.fixture(autouse=True)
def _automatic_backend():
    """A test that sets a global backend must not leak it into the next one."""
    yield
    kernels.set_backend(None)


@pytest.fixture(autouse=True)
def _seed_per_test(request):
    """Each test draws its own fresh inputs, reproducibly: the seed comes from the test's id."""
    torch.manual_seed(zlib.crc32(request.node.nodeid.encode()))
