"""The published results: ``model-index.yml`` and the OpenMMLab metafiles it imports.

Each model entry names its config and holds the paper's parameter count, FLOPs (with the input
shape they were counted at) and metrics. The README tables and tools/analysis_tools/reproduce.py
read them from here, so the numbers are written down once.
"""
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import yaml

# default_scope-independent task names, from the metafile's result tasks.
TASKS = {
    'Image Classification': 'cls',
    'Object Detection': 'det',
    'Instance Segmentation': 'det',
    'Semantic Segmentation': 'seg',
}


THROUGHPUT = 'Throughput (img/s, A100, bs128)'


class MetafileError(ValueError):
    """A model-index or metafile entry is missing a field or malformed."""


@dataclass
class PublishedModel:
    name: str
    alias: str
    config: str  # relative to the repository root
    task: str  # 'cls' | 'det' | 'seg'
    dataset: str  # as the metafile names it: 'ImageNet-1k', 'COCO', 'ADE20K'
    parameters: int
    flops: int
    flops_shape: Tuple[int, int]  # (height, width)
    metrics: Dict[str, float] = field(default_factory=dict)
    throughput: Optional[float] = None  # images/s as published (A100, batch 128)
    weights: Optional[str] = None


def _parse_model(entry: dict, source: str) -> PublishedModel:
    try:
        metadata = entry['Metadata']
        results = entry['Results']
        tasks = {TASKS[result['Task']] for result in results}
        datasets = {result['Dataset'] for result in results}
        if len(tasks) != 1 or len(datasets) != 1:
            raise MetafileError(f'{source}: {entry["Name"]} mixes tasks {sorted(tasks)} or datasets {sorted(datasets)}')
        # A model without published results (a recipe the paper did not run) has empty Metrics.
        metrics = {name: float(value) for result in results for name, value in (result['Metrics'] or {}).items()}
        height, width = metadata['FLOPs Input Shape']
        return PublishedModel(
            name=entry['Name'], alias=entry.get('Alias', entry['Name']), config=entry['Config'],
            task=tasks.pop(), dataset=datasets.pop(), parameters=int(metadata['Parameters']),
            flops=int(metadata['FLOPs']),
            flops_shape=(int(height), int(width)), metrics=metrics, throughput=metadata.get(THROUGHPUT),
            weights=entry.get('Weights'))
    except KeyError as error:
        raise MetafileError(f'{source}: model {entry.get("Name", "?")} lacks {error.args[0]!r}') from error


def load_model_index(path: str) -> List[PublishedModel]:
    """Every model of the model index at ``path`` (its ``Import`` files are relative to the repository root)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'model index {path} does not exist')
    root = osp.dirname(osp.abspath(path))
    with open(path, encoding='utf-8') as file:
        index = yaml.safe_load(file) or {}
    models = []
    for metafile in index.get('Import', []):
        location = osp.join(root, metafile)
        with open(location, encoding='utf-8') as file:
            content = yaml.safe_load(file) or {}
        models += [_parse_model(entry, metafile) for entry in content.get('Models', [])]
    models += [_parse_model(entry, path) for entry in index.get('Models', [])]
    names = [model.name for model in models]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise MetafileError(f'{path}: models listed twice: {duplicates}')
    return models
