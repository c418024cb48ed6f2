"""analyze_logs.py: curves from mmengine json logs, training time, and errors on bad logs or keys."""
import json

import pytest
from analysis_fixtures import check_png
from tool_runner import load_tool

from vmamba_mm.analysis.logs import LogFormatError, last_metrics, read_json_log, series, train_time


def write_log(path, epochs=4, iters_per_epoch=5, seconds_per_iter=0.5, metric='accuracy/top1'):
    """A by-epoch mmengine scalars.json: a training line per iteration, an evaluation line per epoch."""
    lines = []
    for epoch in range(1, epochs + 1):
        for inner in range(1, iters_per_epoch + 1):
            step = (epoch - 1) * iters_per_epoch + inner
            lines.append(dict(lr=1e-3, data_time=0.01, loss=2.0 / step, time=seconds_per_iter * (1 + step % 2),
                              epoch=epoch, iter=step, memory=100, step=step))
        lines.append({metric: 10.0 * epoch, 'data_time': 0.02, 'time': 0.1, 'step': epoch})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('\n'.join(json.dumps(line) for line in lines) + '\n')
    return path


def test_series_units_and_values(tmp_path):
    records = read_json_log(write_log(tmp_path / 'scalars.json'))
    loss, accuracy = series(records, 'loss'), series(records, 'accuracy/top1')
    assert loss.unit == 'iteration' and loss.steps == list(range(1, 21)) and loss.values[1] == 1.0
    assert accuracy.unit == 'epoch' and accuracy.steps == [1, 2, 3, 4] and accuracy.values == [10, 20, 30, 40]
    assert last_metrics(records)['accuracy/top1'] == 40.0
    timing = train_time(records)
    assert timing['mean'] == pytest.approx(0.75) and timing['iterations'] == 20


def test_plot_curve_of_two_runs(tmp_path, capsys):
    first = write_log(tmp_path / 'demo' / '20260101_000000' / 'vis_data' / 'scalars.json')
    second = write_log(tmp_path / 'demo' / '20260102_000000' / 'vis_data' / 'scalars.json', epochs=3)
    out = tmp_path / 'curves.png'
    load_tool('analysis_tools/analyze_logs.py').main(
        ['plot_curve', str(first), str(second), '--keys', 'loss', 'accuracy/top1', '--out', str(out)])
    assert 'curves of loss, accuracy/top1 written to' in capsys.readouterr().out
    png = check_png(out, min_width=500, min_height=200)
    assert png.shape[1] > 1.5 * png.shape[0]  # one panel per key, side by side


def test_cal_train_time(tmp_path, capsys):
    log = write_log(tmp_path / 'demo' / '20260101_000000' / 'vis_data' / 'scalars.json', seconds_per_iter=1.0)
    load_tool('analysis_tools/analyze_logs.py').main(['cal_train_time', str(log)])
    printed = capsys.readouterr().out
    assert printed.startswith('demo/20260101_000000: 1.5000 s/iter') and '20 iterations' in printed


def test_cal_train_time_skips_warm_up_and_gives_images_per_second(tmp_path, capsys):
    log = write_log(tmp_path / 'scalars.json', seconds_per_iter=1.0)  # odd iterations 2 s, even 1 s
    load_tool('analysis_tools/analyze_logs.py').main(
        ['cal_train_time', str(log), '--skip-iters', '17', '--images-per-iter', '64'])
    printed = capsys.readouterr().out  # iterations 18, 19, 20: 1, 2, 1 s
    assert '1.3333 s/iter' in printed and 'over 3 logged' in printed and '48.0 images/s' in printed
    with pytest.raises(LogFormatError, match='after iteration 20'):
        train_time(read_json_log(log), skip_iters=20)


def test_unknown_key_names_the_known_ones(tmp_path):
    tool = load_tool('analysis_tools/analyze_logs.py')
    log = write_log(tmp_path / 'scalars.json', metric='mIoU')
    with pytest.raises(tool.UnknownKeyError, match='mIoU'):
        tool.main(['plot_curve', str(log), '--keys', 'coco/bbox_mAP', '--out', str(tmp_path / 'x.png')])
    assert not (tmp_path / 'x.png').exists()


def test_malformed_logs_are_reported_with_their_line(tmp_path):
    log = tmp_path / 'scalars.json'
    log.write_text('{"loss": 1.0, "step": 1}\nnot json\n')
    with pytest.raises(LogFormatError, match='scalars.json:2'):
        read_json_log(log)
    with pytest.raises(FileNotFoundError):
        read_json_log(tmp_path / 'missing.json')
