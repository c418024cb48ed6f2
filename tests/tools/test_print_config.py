"""tools/misc/print_config.py: the whole config, bases merged and --cfg-options applied."""
import pytest
from tool_runner import REPO, load_tool

print_config = load_tool('misc/print_config.py')
DEMO = REPO / 'configs' / 'detection' / 'mask-rcnn_vmamba-demo_shapes.py'


def test_prints_the_merged_config_with_overrides(capsys):
    print_config.main([str(DEMO), '--cfg-options', 'train_cfg.max_epochs=7', 'model.backbone.drop_path_rate=0.25'])
    text = capsys.readouterr().out
    assert "type='VMamba'" in text  # from the base model file
    assert "default_scope = 'mmdet'" in text  # from the task runtime
    assert 'max_epochs=7' in text and 'drop_path_rate=0.25' in text
    assert 'max_epochs=4' not in text


def test_bad_config_is_named(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        print_config.main([str(tmp_path / 'nope.py')])
    assert str(exit_info.value.code) == f'FileNotFoundError: config file {tmp_path / "nope.py"} does not exist'
    typo = tmp_path / 'typo.py'
    typo.write_text(f"_base_ = ['{DEMO}']\ntrian_dataloader = dict()\n")
    with pytest.raises(SystemExit) as exit_info:
        print_config.main([str(typo)])
    assert "unknown top-level key 'trian_dataloader' (did you mean 'train_dataloader'?)" in str(exit_info.value.code)
