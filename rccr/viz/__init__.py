"""Figures for the notebooks (and anyone else): images, label maps, curves, tables.

Every function takes arrays, tensors or results and returns a new figure (a
:class:`NotebookFigure`, shown when a notebook cell returns it) or a ``pandas.DataFrame``;
none reads files, trains or runs a network. Label maps are drawn in the Cityscapes palette
(``rccr.data.labels.PALETTE``), with a legend of the classes present.

- ``rccr.viz.canvas``: the figure type, and how one image, label map or float map is drawn;
- ``rccr.viz.images``: image grids, the class palette, one region-sampling step;
- ``rccr.viz.charts``: class frequencies, IoU and mIoU, losses (live too), curves,
  memory-bank filling and t-SNE;
- ``rccr.viz.benchmark_charts``: methods over seeds (a curve with its seed range, the
  self-training diagnostics), each method in one colour across figures.
"""

from rccr.viz.benchmark_charts import diagnostics_figure, method_colours, seed_band_figure
from rccr.viz.canvas import (
    DOMAIN_COLOURS,
    DPI,
    RUN_COLOURS,
    NotebookFigure,
    class_colors,
    to_numpy,
)
from rccr.viz.charts import (
    LiveLossPlot,
    bank_fill_figure,
    bar_figure,
    class_frequency_figure,
    histogram_figure,
    iou_figure,
    iou_table,
    line_figure,
    loss_figure,
    miou_figure,
    tsne_figure,
)
from rccr.viz.images import image_grid, palette_figure, region_figure

__all__ = [
    "DOMAIN_COLOURS",
    "DPI",
    "RUN_COLOURS",
    "LiveLossPlot",
    "NotebookFigure",
    "bank_fill_figure",
    "bar_figure",
    "class_colors",
    "class_frequency_figure",
    "diagnostics_figure",
    "histogram_figure",
    "image_grid",
    "iou_figure",
    "iou_table",
    "line_figure",
    "loss_figure",
    "method_colours",
    "miou_figure",
    "palette_figure",
    "region_figure",
    "seed_band_figure",
    "to_numpy",
    "tsne_figure",
]
