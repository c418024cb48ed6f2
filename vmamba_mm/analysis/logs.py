"""Reading mmengine's json scalar logs: a training run's ``<work_dir>/<timestamp>/vis_data/scalars.json``,
a test run's ``<work_dir>/<timestamp>/<timestamp>.json``. One json object per line: training lines carry
``loss``/``lr``/``iter``, evaluation lines the metrics (``accuracy/top1``, ``coco/bbox_mAP``, ``mIoU``...);
training and validation lines have a ``step``.
"""
import json
import os.path as osp
from dataclasses import dataclass, field
from typing import List


class LogFormatError(ValueError):
    """A log file is not an mmengine json scalar log."""


@dataclass
class Series:
    """One key of a log: values against steps, and what the steps count ('iteration' or 'epoch')."""

    key: str
    steps: List[float] = field(default_factory=list)
    values: List[float] = field(default_factory=list)
    unit: str = 'iteration'


def read_json_log(path: str) -> List[dict]:
    """The records of an mmengine json log, in file order."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'log file {path} does not exist')
    records = []
    with open(path, encoding='utf-8') as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise LogFormatError(f'{path}:{number} is not json ({error.msg}); expected mmengine\'s json '
                                     'log (vis_data/scalars.json), one object per line') from error
            if not isinstance(record, dict):
                raise LogFormatError(f'{path}:{number} holds a {type(record).__name__}, not a json object')
            records.append(record)
    return records


def _is_training(record: dict) -> bool:
    return 'lr' in record or 'loss' in record


def series(records: List[dict], key: str) -> Series:
    """The values of ``key``; training keys are per iteration, evaluation keys per epoch in by-epoch runs."""
    by_epoch = any('epoch' in record for record in records if _is_training(record))
    result = Series(key)
    for record in records:
        if key not in record:
            continue
        step = record.get('step', record.get('iter'))
        if step is None:
            raise LogFormatError(f'a record with {key!r} has no step: {record}')
        if not _is_training(record) and by_epoch:
            result.unit = 'epoch'
        result.steps.append(step)
        result.values.append(record[key])
    return result


def available_keys(records: List[dict]) -> List[str]:
    """Every numeric key of the log except the bookkeeping ones."""
    bookkeeping = {'step', 'iter', 'epoch', 'memory', 'data_time', 'time'}
    keys = {}
    for record in records:
        for key, value in record.items():
            if key not in bookkeeping and isinstance(value, (int, float)):
                keys.setdefault(key, None)
    return list(keys)


def last_metrics(records: List[dict]) -> dict:
    """The metrics of the last evaluation record (a test run's results)."""
    evaluations = [record for record in records if not _is_training(record)]
    if not evaluations:
        raise LogFormatError('the log has no evaluation record (no metrics)')
    return {key: value for key, value in evaluations[-1].items() if key not in ('step', 'data_time', 'time')}


def train_time(records: List[dict], skip_iters: int = 0) -> dict:
    """Seconds per training iteration: mean, standard deviation, and the iterations they cover.

    Records logged at iterations up to ``skip_iters`` are left out of the mean (warm-up: kernel compilation,
    cuDNN autotuning, data loader start)."""
    times = [record['time'] for record in records
             if _is_training(record) and 'time' in record and record.get('step', record.get('iter', 0)) > skip_iters]
    if not times:
        raise LogFormatError(f'the log has no training record with a time after iteration {skip_iters}')
    mean = sum(times) / len(times)
    std = (sum((time - mean)**2 for time in times) / len(times))**0.5
    last_iter = max(record.get('iter', record.get('step', 0)) for record in records if _is_training(record))
    return dict(mean=mean, std=std, records=len(times), iterations=last_iter)
