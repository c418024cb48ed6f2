"""Suite-wide setup that must happen before any test module imports the kernels package."""
import os

import torch

# Triton decides between compiled and interpreted kernels when a kernel is decorated, i.e. when
# kernels' Triton modules are first imported -- by whichever test folder pytest collects first. On a
# machine without CUDA, the interpreter is the only way to run (and so test) the Triton kernels.
if not torch.cuda.is_available():
    os.environ.setdefault('TRITON_INTERPRET', '1')
