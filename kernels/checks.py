"""Input validation for the public ops: wrong shapes fail here, by name, not deep in a kernel.

The public functions in ``ops.py`` call these once per call; nothing behind them validates again. Zero-size
batches, maps, sequences and channel counts are valid (the ops return empty or zero results); a state size
N of zero is not, since a scan without state has nothing to carry.
"""
import torch


def _shape_error(op, name, expected, tensor):
    return ValueError(f'{op}: {name} must have shape {expected}, got {tuple(tensor.shape)}')


def _check_tensor(op, name, tensor, ndim, expected):
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f'{op}: {name} must be a torch.Tensor, got {type(tensor).__name__}')
    if tensor.dim() != ndim:
        raise _shape_error(op, name, expected, tensor)
    if not tensor.is_floating_point():
        raise TypeError(f'{op}: {name} must be a floating-point tensor, got {tensor.dtype}')


def _check_shape(op, name, tensor, shape, expected):
    if tuple(tensor.shape) != tuple(shape):
        raise _shape_error(op, name, f'{expected} = {tuple(shape)}', tensor)


def _check_same_device(op, **tensors):
    devices = {name: t.device for name, t in tensors.items() if t is not None}
    if len(set(devices.values())) > 1:
        listing = ', '.join(f'{name} on {device}' for name, device in devices.items())
        raise ValueError(f'{op}: all tensors must be on one device, got {listing}')


def _check_has_state(op, A):
    if A.shape[1] == 0:
        raise ValueError(f'{op}: A must have a state size N >= 1 (its second dim), got {tuple(A.shape)}')


def _image_layout(channels_last):
    return '(B, H, W, D)' if channels_last else '(B, D, H, W)'


def check_cross_scan(x, channels_last):
    _check_tensor('cross_scan', 'x', x, 4, _image_layout(channels_last))


def check_cross_merge(y, height, width):
    _check_tensor('cross_merge', 'y', y, 4, '(B, 4, D, height * width)')
    if height < 0 or width < 0:
        raise ValueError(f'cross_merge: height and width must be non-negative, got {height}x{width}')
    if y.shape[1] != 4 or y.shape[3] != height * width:
        raise _shape_error('cross_merge', 'y', f'(B, 4, D, height * width = {height * width})', y)


def check_selective_scan(u, delta, A, B, C, D, delta_bias):
    op = 'selective_scan'
    _check_tensor(op, 'u', u, 3, '(batch, K * D, L)')
    batch, channels, length = u.shape
    _check_tensor(op, 'delta', delta, 3, '(batch, K * D, L)')
    _check_shape(op, 'delta', delta, u.shape, 'u.shape')
    _check_tensor(op, 'A', A, 2, '(K * D, N)')
    if A.shape[0] != channels:
        raise _shape_error(op, 'A', f'(K * D = {channels}, N)', A)
    _check_has_state(op, A)
    state = A.shape[1]
    _check_tensor(op, 'B', B, 4, '(batch, K, N, L)')
    groups = B.shape[1]
    if B.shape[0] != batch or B.shape[2:] != (state, length) or groups == 0 or channels % groups:
        raise _shape_error(op, 'B', f'(batch = {batch}, K dividing {channels}, N = {state}, L = {length})', B)
    _check_tensor(op, 'C', C, 4, '(batch, K, N, L)')
    _check_shape(op, 'C', C, B.shape, 'B.shape')
    for name, vector in (('D', D), ('delta_bias', delta_bias)):
        if vector is not None:
            _check_tensor(op, name, vector, 1, f'(K * D = {channels},)')
            _check_shape(op, name, vector, (channels,), '(K * D,)')
    _check_same_device(op, u=u, delta=delta, A=A, B=B, C=C, D=D, delta_bias=delta_bias)


def check_ss2d(x, x_proj_weight, dt_proj_weight, dt_proj_bias, A, D, channels_last):
    op = 'ss2d'
    _check_tensor(op, 'x', x, 4, _image_layout(channels_last))
    channels = x.shape[3] if channels_last else x.shape[1]
    _check_tensor(op, 'dt_proj_weight', dt_proj_weight, 3, f'(4, D = {channels}, R)')
    rank = dt_proj_weight.shape[2]
    if dt_proj_weight.shape[:2] != (4, channels):
        raise _shape_error(op, 'dt_proj_weight', f'(4, D = {channels}, R)', dt_proj_weight)
    _check_tensor(op, 'A', A, 2, f'(4 * D = {4 * channels}, N)')
    if A.shape[0] != 4 * channels:
        raise _shape_error(op, 'A', f'(4 * D = {4 * channels}, N)', A)
    _check_has_state(op, A)
    state = A.shape[1]
    _check_tensor(op, 'x_proj_weight', x_proj_weight, 3, '(4, R + 2N, D)')
    _check_shape(op, 'x_proj_weight', x_proj_weight, (4, rank + 2 * state, channels), '(4, R + 2N, D)')
    _check_tensor(op, 'dt_proj_bias', dt_proj_bias, 2, '(4, D)')
    _check_shape(op, 'dt_proj_bias', dt_proj_bias, (4, channels), '(4, D)')
    _check_tensor(op, 'D', D, 1, '(4 * D,)')
    _check_shape(op, 'D', D, (4 * channels,), '(4 * D,)')
    _check_same_device(op, x=x, x_proj_weight=x_proj_weight, dt_proj_weight=dt_proj_weight,
                       dt_proj_bias=dt_proj_bias, A=A, D=D)
