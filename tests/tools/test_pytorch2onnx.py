"""pytorch2onnx.py: a VMamba classifier exports to plain ONNX operators and onnxruntime agrees with PyTorch."""
import pytest
import torch
from analysis_fixtures import write_checkpoint, write_tiny_classifier_config
from tool_runner import load_tool

from vmamba_mm.analysis.models import build_model

onnx = pytest.importorskip('onnx')
onnxruntime = pytest.importorskip('onnxruntime')
SHAPE = (32, 64)  # non-square: the scan orders of rows and columns differ


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """(tool, config, checkpoint, onnx file): a trained-looking tiny classifier exported with --verify."""
    folder = tmp_path_factory.mktemp('onnx')
    tool = load_tool('deployment/pytorch2onnx.py')
    config = write_tiny_classifier_config(folder)
    checkpoint = write_checkpoint(build_model(str(config)), folder / 'trained.pth', seed=3)
    out = folder / 'export' / 'tiny.onnx'
    tool.main([str(config), str(checkpoint), '--shape', *map(str, SHAPE), '--out', str(out), '--verify'])
    return tool, config, checkpoint, out


def test_export_is_plain_onnx_and_matches_pytorch(exported):
    _, config, checkpoint, out = exported
    graph = onnx.load(str(out)).graph
    assert {node.domain for node in graph.node} <= {'', 'ai.onnx'}  # standard operators only
    session = onnxruntime.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    model = build_model(str(config), str(checkpoint))
    images = torch.randn(1, 3, *SHAPE)
    with torch.no_grad():
        expected = model(images, mode='tensor')
    got, = session.run(None, {'images': images.numpy()})
    assert got.shape == (1, 10)
    torch.testing.assert_close(torch.from_numpy(got), expected, rtol=0, atol=1e-4)
    assert expected.abs().max() > 1e-2  # the comparison is not between two near-zero outputs


def test_verification_fails_loudly_when_outputs_differ(exported):
    tool, config, checkpoint, out = exported
    model = build_model(str(config), str(checkpoint))
    assert tool.verify(model, str(out), SHAPE, atol=1e-4) <= 1e-4
    with torch.no_grad():
        model.head.fc.bias.add_(1.0)  # the exported file no longer matches the model
    with pytest.raises(tool.ExportError, match='disagree'):
        tool.verify(model, str(out), SHAPE, atol=1e-4)


def test_only_classification_configs_are_exported(tmp_path):
    from vmamba_mm.launch import ConfigScopeError

    config = 'configs/segmentation/upernet_vmamba-demo_shapes.py'
    with pytest.raises(ConfigScopeError, match='exports classifiers'):
        load_tool('deployment/pytorch2onnx.py').main([config, '--out', str(tmp_path / 'seg.onnx')])
    assert not (tmp_path / 'seg.onnx').exists()
