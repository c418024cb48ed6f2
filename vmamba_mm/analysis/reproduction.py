"""The reproduction report: published numbers (model index) beside measured ones, as Markdown and a PNG.

The tool (tools/analysis_tools/reproduce.py) does the measuring; this module maps test metrics
onto the metafile's names and renders what it gets.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .metafile import PublishedModel

# mm test metric -> (metafile metric, factor to the paper's percent).
TEST_METRICS = {
    'cls': {'accuracy/top1': ('Top 1 Accuracy', 1.0)},
    'det': {'coco/bbox_mAP': ('box AP', 100.0), 'coco/segm_mAP': ('mask AP', 100.0)},
    'seg': {'mIoU': ('mIoU', 1.0)},
}
# A multi-scale + flip test (tools/test.py --tta) reports mIoU under the same name.
TTA_METRICS = {'seg': {'mIoU': ('mIoU(ms+flip)', 1.0)}}
TASK_TITLES = {
    'cls': 'ImageNet-1k classification',
    'det': 'COCO detection and instance segmentation (Mask R-CNN)',
    'seg': 'ADE20K semantic segmentation (UperNet)',
}
# Counts are "exact" within this relative difference (the tolerance FLOPs are held to).
TOLERANCE = 0.01


@dataclass
class Measured:
    """What this installation measured for one model; None where not measured."""

    parameters: Optional[int] = None
    flops: Optional[int] = None
    throughput: Optional[float] = None
    metrics: Dict[str, float] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)


def paper_metrics(task: str, test_metrics: Dict[str, float], tta: bool = False) -> Dict[str, float]:
    """A test run's metrics under the metafile's names and scale (percent)."""
    names = (TTA_METRICS if tta else TEST_METRICS).get(task, {})
    return {name: float(test_metrics[key]) * factor for key, (name, factor) in names.items() if key in test_metrics}


def relative_difference(measured, published) -> Optional[float]:
    if measured is None or published in (None, 0):
        return None
    return measured / published - 1.0


def _count(value, unit) -> str:
    return '–' if value is None else f'{value / unit:,.3f}'


def _published(value, unit) -> str:
    """A published count at the precision it was published with (50M stays 50, 4.906G stays 4.906)."""
    for decimals in range(4):
        if value % round(unit / 10**decimals) == 0:
            return f'{value / unit:,.{decimals}f}'
    return _count(value, unit)


def _difference(measured, published, exact: bool) -> str:
    difference = relative_difference(measured, published)
    if difference is None:
        return '–'
    if exact and measured == published:
        return 'exact'
    mark = '✓' if abs(difference) <= TOLERANCE else '✗'
    return f'{difference:+.2%} {mark}'


def _metric(value) -> str:
    return '–' if value is None else f'{value:.1f}'


def _throughput(value) -> str:
    return '–' if value is None else f'{value:,.0f}'


def paper_table(models: List[PublishedModel]) -> str:
    """The published numbers of ``task`` as a Markdown table (the README's model zoo)."""
    metric_names = sorted({name for model in models for name in model.metrics}, key=_metric_order)
    header = ['Model', 'Config', 'Params (M)', 'FLOPs (G)'] + metric_names
    rows = [_row(header), _row(['---'] * len(header))]
    for model in models:
        rows.append(_row([model.alias, f'[config](/{model.config})', _published(model.parameters, 1e6),
                          _published(model.flops, 1e9)] + [_metric(model.metrics.get(name)) for name in metric_names]))
    return '\n'.join(rows)


def comparison_table(models: List[PublishedModel], measured: Dict[str, Measured]) -> str:
    """Published vs measured for models of one task, as a Markdown table."""
    metric_names = sorted({name for model in models for name in model.metrics}, key=_metric_order)
    header = ['Model', 'Params (M) paper', 'measured', 'Δ', 'FLOPs (G) paper', 'measured', 'Δ']
    for name in metric_names:
        header += [f'{name} paper', 'measured']
    with_throughput = any(model.throughput or measured.get(model.name, Measured()).throughput for model in models)
    if with_throughput:
        header += ['img/s paper', 'measured']
    rows = [_row(header), _row(['---'] * len(header))]
    for model in models:
        result = measured.get(model.name, Measured())
        # Exact-looking published counts (not multiples of 10k) must match to the unit.
        exact_params = model.parameters % 10_000 != 0
        cells = [f'{model.alias}<br>`{model.name}`',
                 _published(model.parameters, 1e6), _count(result.parameters, 1e6),
                 _difference(result.parameters, model.parameters, exact_params),
                 _published(model.flops, 1e9), _count(result.flops, 1e9),
                 _difference(result.flops, model.flops, False)]
        for name in metric_names:
            cells += [_metric(model.metrics.get(name)), _metric(result.metrics.get(name))]
        if with_throughput:
            cells += [_throughput(model.throughput), _throughput(result.throughput)]
        rows.append(_row(cells))
    return '\n'.join(rows)


def _metric_order(name: str):
    return ('(' in name, name)


def _row(cells) -> str:
    return '| ' + ' | '.join(str(cell) for cell in cells) + ' |'


def ratio_figure(models: List[PublishedModel], measured: Dict[str, Measured]):
    """Measured vs published (relative difference, %) for every number measured, one row per model."""
    from . import figures

    points = []  # (model alias, quantity, difference in %)
    for model in models:
        result = measured.get(model.name)
        if result is None:
            continue
        for quantity, mine, theirs in [('params', result.parameters, model.parameters),
                                       ('FLOPs', result.flops, model.flops),
                                       ('img/s', result.throughput, model.throughput),
                                       *[(name, result.metrics.get(name), value)
                                         for name, value in model.metrics.items()]]:
            difference = relative_difference(mine, theirs)
            if difference is not None:
                points.append((model.alias, quantity, 100.0 * difference))
    if not points:
        return None
    plt = figures.pyplot()
    from matplotlib.ticker import MaxNLocator
    aliases = list(dict.fromkeys(alias for alias, _, _ in points))
    quantities = list(dict.fromkeys(quantity for _, quantity, _ in points))
    figure, ax = plt.subplots(figsize=(7, 0.45 * len(aliases) + 1.4))
    band = 100.0 * TOLERANCE
    ax.axvspan(-band, band, color='tab:green', alpha=0.15, label=f'±{TOLERANCE:.0%}')
    ax.axvline(0.0, color='tab:green', linewidth=1)
    markers = 'osD^v<>P*X'
    for index, quantity in enumerate(quantities):
        selected = [(aliases.index(alias), ratio) for alias, name, ratio in points if name == quantity]
        offset = (index - (len(quantities) - 1) / 2) * 0.12
        ax.scatter([ratio for _, ratio in selected], [row + offset for row, _ in selected],
                   marker=markers[index % len(markers)], label=quantity, zorder=3)
    ax.set_yticks(range(len(aliases)), aliases)
    ax.invert_yaxis()
    reach = max(2 * band, *(abs(ratio) * 1.1 for _, _, ratio in points))
    ax.set_xlim(-reach, reach)
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.xaxis.set_major_formatter('{x:+g}%')
    ax.set_xlabel('measured vs paper')
    ax.grid(axis='x', alpha=0.3)
    ax.legend(fontsize='small', loc='best')
    figure.tight_layout()
    return figure
