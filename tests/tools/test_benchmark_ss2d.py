"""The SS2D kernel benchmark's CPU-side logic: shape selection, the sums over VMamba-T's blocks, the spill table
and the one-walk switch. Timing needs a GPU; its numbers come from GPU runs, not tests."""
import types

import pytest
from triton.runtime.jit import JITFunction

from kernels import triton_ss2d
from tool_runner import load_tool

bench = load_tool('analysis_tools/benchmark_ss2d.py')


def stage_names(prefix):
    return [f'{prefix}-stage{stage}' for stage in range(1, 5)]


def test_presets_select_their_stages():
    assert bench.parse_args([]).shapes == stage_names('T') + stage_names('det')
    assert bench.parse_args(['--preset', 'ade']).shapes == stage_names('ade')
    assert bench.parse_args(['--preset', 'det', 't224', 'det']).shapes == stage_names('det') + stage_names('T')
    assert bench.parse_args(['--preset', 'all']).shapes == [shape[0] for shape in bench.SHAPES]
    assert bench.parse_args(['--shapes', 'det-stage2', 'T-stage1']).shapes == ['det-stage2', 'T-stage1']


@pytest.mark.parametrize('group, batch, height, width', [('det', 2, 800, 1280), ('ade', 2, 512, 512)])
def test_dense_prediction_stages_follow_the_input_size(group, batch, height, width):
    """VMamba-T's maps: a stride-4 stem, then three 2× downsamplings, with channels doubling from 96."""
    shapes = [bench.SHAPES[[s[0] for s in bench.SHAPES].index(name)] for name in bench.PRESETS[group]]
    assert [shape[1:] for shape in shapes] == [(batch, 96 * 2**s, height // 4 // 2**s, width // 4 // 2**s)
                                               for s in range(4)]


@pytest.mark.parametrize('argv, message', [
    (['--preset', 'coco'], "invalid choice: 'coco'"),
    (['--preset', 'det', '--shapes', 'T-stage1'], 'not allowed with argument'),
])
def test_bad_shape_selections_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(argv)
    assert message in capsys.readouterr().err


def rows_of(shapes, dtype, variant, times):
    return [dict(shape=name, dtype=dtype, variant=variant, fused_fwdbwd_ms=ms) for name, ms in zip(shapes, times)]


def test_block_sums_weight_each_stage_by_its_depth():
    rows = (rows_of(stage_names('T'), 'fp32', 'one-walk', [1.0, 2.0, 3.0, 4.0])
            + rows_of(stage_names('T'), 'fp32', 'shipped', [1.0, 2.0, 1.0, 4.0])
            # det: every stage for fp32; bf16 lacks the shipped stage 4
            + rows_of(stage_names('det'), 'fp32', 'one-walk', [10.0, 5.0, 2.0, 1.0])
            + rows_of(stage_names('det'), 'fp32', 'shipped', [2.0, 1.0, 1.0, 1.0])
            + rows_of(stage_names('det'), 'bf16', 'one-walk', [10.0, 5.0, 2.0, 1.0])
            + rows_of(stage_names('det')[:3], 'bf16', 'shipped', [2.0, 1.0, 1.0])
            # ade: only three stages
            + rows_of(stage_names('ade')[:3], 'fp32', 'one-walk', [1.0, 1.0, 1.0])
            + rows_of(stage_names('ade')[:3], 'fp32', 'shipped', [1.0, 1.0, 1.0]))
    assert bench.VMAMBA_T_DEPTHS == (2, 2, 8, 2)
    sums = bench.block_sums(rows)
    assert [(s['group'], s['dtype']) for s in sums] == [('t224', 'fp32'), ('det', 'fp32')]
    t224, det = sums
    assert (t224['one_walk_fwdbwd_ms'], t224['shipped_fwdbwd_ms']) == pytest.approx((2 + 4 + 24 + 8, 2 + 4 + 8 + 8))
    assert t224['speedup'] == pytest.approx(38 / 22)
    assert (det['one_walk_fwdbwd_ms'], det['shipped_fwdbwd_ms']) == pytest.approx((20 + 10 + 16 + 2, 4 + 2 + 8 + 2))
    assert det['speedup'] == pytest.approx(3.0)


def fake_kernel(constants, num_warps, n_regs=None, n_spills=None):
    """A compiled kernel as Triton keeps it: its source's constants keyed by argument path, metadata, and registers
    and spills once loaded."""
    kernel = types.SimpleNamespace(src=types.SimpleNamespace(constants=constants),
                                   metadata=types.SimpleNamespace(num_warps=num_warps))
    if n_regs is not None:
        kernel.n_regs, kernel.n_spills = n_regs, n_spills
    return kernel


def fake_jit_function(arg_names, constexprs, kernels):
    params = [types.SimpleNamespace(name=name, is_constexpr=name in constexprs) for name in arg_names]
    # device -> (compiled kernels by key, key cache, target, backend, binder), as triton.runtime.jit keeps them
    caches = {0: ({f'key{i}': kernel for i, kernel in enumerate(kernels)}, {}, 'target', 'backend', 'binder')}
    return types.SimpleNamespace(arg_names=arg_names, params=params, device_caches=caches)


def test_spill_table_lists_every_compiled_variant():
    fwd = fake_jit_function(
        ['x', 'stride', 'R', 'N', 'BLOCK_D', 'FAST_MATH'], {'R', 'N', 'BLOCK_D', 'FAST_MATH'},
        # the unit stride (argument 1) is compiled in as a constant but is no constexpr of the kernel
        [fake_kernel({(1, ): 1, (2, ): 6, (3, ): 1, (4, ): 32, (5, ): True}, 1, n_regs=96, n_spills=0),
         fake_kernel({(1, ): 1, (2, ): 6, (3, ): 1, (4, ): 16, (5, ): True}, 1)])
    bwd = fake_jit_function(['x', 'BLOCK_D', 'Z_INLINE'], {'BLOCK_D', 'Z_INLINE'},
                            [fake_kernel({(1, ): 8, (2, ): True}, 2, n_regs=255, n_spills=12),
                             fake_kernel({(1, ): 8, (2, ): False}, 2, n_regs=200, n_spills=0)])
    variants = bench.compiled_variants({'_ss2d_fwd_kernel': fwd, '_ss2d_bwd_kernel': bwd})
    assert [(v['kernel'], v['spec'], v['n_regs'], v['n_spills']) for v in variants] == [
        # Z_INLINE differs between the backward's variants, so its label shows it; FAST_MATH does not
        ('_ss2d_bwd_kernel', 'BLOCK_D=8 warps=2 Z_INLINE=True', 255, 12),
        ('_ss2d_bwd_kernel', 'BLOCK_D=8 warps=2 Z_INLINE=False', 200, 0),
        ('_ss2d_fwd_kernel', 'BLOCK_D=32 warps=1 N=1 R=6', 96, 0),
        ('_ss2d_fwd_kernel', 'BLOCK_D=16 warps=1 N=1 R=6', None, None),  # compiled, not loaded yet
    ]
    assert variants[2]['constexprs'] == dict(R=6, N=1, BLOCK_D=32, FAST_MATH=True)


def test_spill_table_of_an_unknown_cache_layout_is_none():
    known = fake_jit_function(['BLOCK_D'], {'BLOCK_D'}, [fake_kernel({(0, ): 16}, 1)])
    assert bench.compiled_variants({'_ss2d_fwd_kernel': known, '_ss2d_bwd_kernel': types.SimpleNamespace()}) is None
    known.device_caches = {0: 'elsewhere'}
    assert bench.compiled_variants({'_ss2d_fwd_kernel': known}) is None


def _ss2d_demo_kernel(x):
    pass


def _ss2d_demo_helper(x):
    pass


def test_ss2d_kernels_are_the_jitted_kernel_functions():
    module = types.SimpleNamespace(_ss2d_demo_kernel=JITFunction(_ss2d_demo_kernel),
                                   _ss2d_demo_helper=JITFunction(_ss2d_demo_helper),
                                   _ss2d_plain_kernel=_ss2d_demo_kernel)
    assert bench.ss2d_kernels(module) == {'_ss2d_demo_kernel': module._ss2d_demo_kernel}


def test_one_walk_restores_max_segments_when_the_timing_fails(monkeypatch):
    monkeypatch.setattr(triton_ss2d, 'MAX_SEGMENTS', 8)
    seen = []

    def failing_timing():
        seen.append(triton_ss2d.MAX_SEGMENTS)
        raise RuntimeError('timing failed')

    with pytest.raises(RuntimeError, match='timing failed'):
        bench.in_variant('one-walk', failing_timing)
    assert bench.in_variant('shipped', lambda: triton_ss2d.MAX_SEGMENTS) == 8
    assert seen == [1] and triton_ss2d.MAX_SEGMENTS == 8
