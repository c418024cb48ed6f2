"""Property-based tests: every op and backend against float64 over drawn shapes, dtypes and step sizes.

The default run draws a few cases per op; the ``slow`` run (CI) draws 240 in
all. With CI=true the 'kernels-ci' profile derandomizes hypothesis, so CI
replays the same cases every run; locally each run draws new ones. Chunk
sizes are drawn too and kept tiny, so sequence lengths of a few chunks cross
chunk boundaries while each case stays cheap under the Triton interpreter.
"""
import os
from unittest import mock

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kernels
from kernels import reference, triton_selective_scan
from kernel_oracles import check_selective_scan, check_ss2d

# The function-scoped fixtures here only seed torch and reset the backend, which is
# harmless to share between the examples of one test.
_PROFILE = dict(deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile('kernels-ci', derandomize=True, **_PROFILE)
settings.register_profile('kernels-local', **_PROFILE)


def fuzz(max_examples):
    profile = 'kernels-ci' if os.environ.get('CI', '').lower() == 'true' else 'kernels-local'
    return settings(settings.get_profile(profile), max_examples=max_examples)


BACKENDS = st.sampled_from(['torch', 'triton'])
SEEDS = st.integers(0, 2**31 - 1)


@st.composite
def scan_cases(draw):
    chunk = draw(st.sampled_from([4, 8]))
    length = draw(st.one_of(st.integers(1, 3 * chunk + 1),
                            st.sampled_from([chunk - 1, chunk, chunk + 1, 2 * chunk - 1, 2 * chunk + 1])))
    return dict(
        backend=draw(BACKENDS), dtype=draw(st.sampled_from([torch.float32, torch.bfloat16, torch.float16])),
        shape=(draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 5)),
               draw(st.sampled_from([1, 2, 3, 16])), length),
        chunk=chunk, tile=draw(st.sampled_from([32, 128])),
        out_fp32=draw(st.booleans()), without=draw(st.sampled_from([(), ('D', ), ('delta_bias', ),
                                                                     ('D', 'delta_bias')])),
        delta_softplus=draw(st.booleans()),
        # -8: tiny steps (state barely moves); +6: large steps (decays underflow).
        delta_shift=draw(st.sampled_from([-8.0, 0.0, 6.0])), seed=draw(SEEDS))


def _check_scan_case(case):
    with mock.patch.object(reference, 'CHUNK_SIZE', case['chunk']), \
            mock.patch.object(triton_selective_scan, 'CHUNK_SIZE', case['chunk']), \
            mock.patch.object(triton_selective_scan, 'TILE_ELEMENTS', case['tile']):
        check_selective_scan(case['backend'], case['dtype'], case['shape'], out_fp32=case['out_fp32'],
                             delta_softplus=case['delta_softplus'], without=case['without'],
                             delta_shift=case['delta_shift'],
                             generator=torch.Generator().manual_seed(case['seed']))


@fuzz(12)
@given(case=scan_cases())
def test_fuzz_selective_scan(case):
    _check_scan_case(case)


@pytest.mark.slow
@fuzz(130)
@given(case=scan_cases())
def test_fuzz_selective_scan_many(case):
    _check_scan_case(case)


@st.composite
def ss2d_cases(draw):
    backend = draw(BACKENDS)
    dtype = draw(st.sampled_from([torch.float32, torch.bfloat16]))
    # The interpreter runs the fused kernel's per-state loops in Python: keep its maps smaller.
    side = st.integers(1, 7 if backend == 'torch' else 4)
    return dict(backend=backend, dtype=dtype, channels_last=draw(st.booleans()), seed=draw(SEEDS),
                shape=(draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(side), draw(side),
                       draw(st.integers(1, 3)), draw(st.sampled_from([1, 2, 16]))))


def _check_ss2d_case(case):
    with mock.patch.object(reference, 'CHUNK_SIZE', 8):
        check_ss2d(case['backend'], case['dtype'], case['shape'], case['channels_last'],
                   generator=torch.Generator().manual_seed(case['seed']))


@fuzz(4)
@given(case=ss2d_cases())
def test_fuzz_ss2d(case):
    _check_ss2d_case(case)


@pytest.mark.slow
@fuzz(30)  # about ten seconds an example on a 2-core CI machine
@given(case=ss2d_cases())
def test_fuzz_ss2d_many(case):
    _check_ss2d_case(case)


@st.composite
def cross_cases(draw):
    return dict(backend=draw(BACKENDS), dtype=draw(st.sampled_from([torch.float32, torch.bfloat16, torch.float16])),
                batch=draw(st.integers(1, 2)), channels=draw(st.integers(1, 20)), height=draw(st.integers(1, 19)),
                width=draw(st.integers(1, 19)), channels_last=draw(st.booleans()), seed=draw(SEEDS))


def _check_cross_case(case):
    generator = torch.Generator().manual_seed(case['seed'])
    batch, channels, height, width = case['batch'], case['channels'], case['height'], case['width']
    channels_last, backend = case['channels_last'], case['backend']
    shape = (batch, height, width, channels) if channels_last else (batch, channels, height, width)
    x = torch.randn(shape, generator=generator, dtype=torch.float64)
    y = torch.randn(batch, 4, channels, height * width, generator=generator, dtype=torch.float64)
    scanned = kernels.cross_scan(x.to(case['dtype']), channels_last, backend=backend)
    assert torch.equal(scanned, reference.cross_scan(x, channels_last).to(case['dtype']))
    merged = kernels.cross_merge(y.to(case['dtype']), height, width, channels_last, backend=backend)
    expected = reference.cross_merge(y.to(case['dtype']).double(), height, width, channels_last)
    tol = 1e-5 if case['dtype'] == torch.float32 else 1e-2
    torch.testing.assert_close(merged.double(), expected, rtol=tol, atol=tol)
    # Adjointness, in float64 on the torch backend and in fp32 on triton.
    precise = torch.float64 if backend == 'torch' else torch.float32
    lhs = (kernels.cross_scan(x.to(precise), channels_last, backend=backend).double() * y).sum()
    rhs = (x * kernels.cross_merge(y.to(precise), height, width, channels_last, backend=backend).double()).sum()
    torch.testing.assert_close(lhs, rhs, rtol=1e-5, atol=1e-5)


@fuzz(10)
@given(case=cross_cases())
def test_fuzz_cross_scan_and_merge(case):
    _check_cross_case(case)


@pytest.mark.slow
@fuzz(60)
@given(case=cross_cases())
def test_fuzz_cross_scan_and_merge_many(case):
    _check_cross_case(case)
