"""torch.compile keeps a whole VMamba (stem, SS2D blocks, downsampling, output norms) in one graph."""
import pytest
import torch

from vmamba_mm.models import VMamba

TINY = dict(dims=8, depths=(1, 1, 1, 1), ssm_ratio=1.0, d_state=1)
DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA'))]


@pytest.mark.parametrize('device', DEVICES)
def test_backbone_compiles_to_one_graph(device):
    torch.manual_seed(0)
    model = VMamba(arch=TINY, out_indices=(3, )).to(device)
    images = torch.randn(2, 3, 64, 48, device=device)

    explanation = torch._dynamo.explain(model)(images)

    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


@pytest.mark.parametrize('device', DEVICES)
def test_compiled_backbone_matches_eager_forward_and_backward(device):
    torch.manual_seed(0)
    model = VMamba(arch=TINY, out_indices=(3, )).to(device)
    images = torch.randn(2, 3, 64, 48, device=device)
    # aot_eager traces forward and backward like inductor but skips code generation, which is slow on a CPU
    compiled = torch.compile(model, fullgraph=True, backend='inductor' if device == 'cuda' else 'aot_eager')

    eager_out = model(images)[0]
    eager_out.square().sum().backward()
    eager_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    compiled_out = compiled(images)[0]
    compiled_out.square().sum().backward()

    torch.testing.assert_close(compiled_out, eager_out, rtol=1e-4, atol=1e-4)
    for compiled_grad, eager_grad in zip((p.grad for p in model.parameters()), eager_grads):
        torch.testing.assert_close(compiled_grad, eager_grad, rtol=1e-3, atol=1e-4)
