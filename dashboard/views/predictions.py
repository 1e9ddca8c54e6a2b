"""Predictions: a checkpoint's class map on a target val image or an uploaded one, beside a
second run's and the ground truth; the confusion matrix of a checkpoint's evaluation."""

import altair as alt
import loaders
import numpy as np
import streamlit as st

from rccr.analysis.prediction import decode_image, predict_labels
from rccr.analysis.results import confusion_long
from rccr.data import DataError
from rccr.data.labels import CLASS_NAMES
from rccr.runs import RunError
from rccr.viz.prediction_pictures import prediction_picture
from rccr.viz.region_pictures import to_rgb

CLASSES = list(CLASS_NAMES)
NONE = "(none)"

st.title("Predictions")
found = loaders.runs_or_stop()
usable = loaders.kept_or_stop(
    [run for run in found.runs if run.checkpoints and run.config],
    "No run has a checkpoint yet: checkpoints are written every `train.checkpoint_every` "
    "iterations and at the end.",
)
names = [run.name for run in usable]
by_name = {run.name: run for run in usable}


def _checkpoint(run_name: str, key: str) -> int:
    iterations = list(by_name[run_name].checkpoints)
    return st.selectbox("Checkpoint", iterations, index=len(iterations) - 1,
                        format_func=lambda i: f"iter_{i}", key=key)  # fmt: skip


first, second = st.columns(2)
with first:
    run = loaders.pick_run(found, usable, "Run", key="pred.run")
    iteration = _checkpoint(run.name, "pred.checkpoint")
with second:
    others = [NONE, *(name for name in names if name != run.name)]
    other = st.selectbox("Compare with", others, key="pred.compare")
    other_iteration = _checkpoint(other, "pred.compare_checkpoint") if other != NONE else None
config = run.config
assert config is not None

source = st.radio("Image", ["a target val image", "an image of mine"], horizontal=True,
                  key="pred.source")  # fmt: skip
truth = None
try:
    if source == "a target val image":
        loaders.check_data(config, found.root, "val")
        width, height = config.data.val_size
        val = loaders.dataset("cityscapes", config.data.target_root, "val", (width, height),
                              config.data.val_list)  # fmt: skip
        index = int(st.number_input("Val image", 0, len(val) - 1, 0, key="pred.index"))
        sample = val[index]
        image, truth = to_rgb(sample.image), sample.label.numpy()
        title = val.pairs[index].image.name
    else:
        upload = st.file_uploader("PNG or JPEG, at most 4096x4096 pixels",
                                  type=["png", "jpg", "jpeg"], key="pred.upload")  # fmt: skip
        if upload is None:
            st.info("Choose an image file to see what the checkpoints make of it.")
            st.stop()
        image, title = decode_image(upload.getvalue(), upload.name), upload.name
    shown = [(run.name, iteration)] + ([(other, other_iteration)] if other_iteration else [])
    predictions = []
    with st.spinner("Predicting on the CPU"):
        for name, at in shown:
            models = loaders.checkpoint_models(name, str(found.root), at)
            size = models.config.data.val_size
            labels = predict_labels(models.student, image, size).numpy()
            predictions.append((f"{name} iter_{at}", labels))
except (RunError, DataError, ValueError, OSError) as exc:  # PathError is a ValueError
    st.error(loaders.plain(exc))
    st.stop()
st.image(prediction_picture(image, title, predictions, truth), output_format="PNG")
caption = "Each run's class map drawn over the image"
if truth is not None:
    known = truth != 255
    scores = ", ".join(
        f"{name} {100 * float(np.mean(labels[known] == truth[known])):.1f} %"
        for name, labels in predictions
    )
    caption += f", then the ground truth. Pixel accuracy on this image: {scores}."
else:
    caption += " (no ground truth for an image of yours)."
st.caption(loaders.plain(caption))

st.header("Confusion matrix")
evaluated = list(run.evals)
if not evaluated:
    st.info(loaders.plain(f"{run.name} has no evaluation yet (eval/iter_N.json)."))
    st.stop()
at = st.selectbox("Evaluation", evaluated, index=len(evaluated) - 1,
                  format_func=lambda i: f"iter_{i}", key="pred.confusion")  # fmt: skip
result = run.evals[at]
matrix = confusion_long(result)
st.altair_chart(
    alt.Chart(matrix)
    .mark_rect()
    .encode(
        x=alt.X(
            "prediction:N", sort=CLASSES, title="predicted class", axis=alt.Axis(labelOverlap=False)
        ),
        y=alt.Y(
            "truth:N", sort=CLASSES, title="ground-truth class", axis=alt.Axis(labelOverlap=False)
        ),  # every class named
        color=alt.Color(
            "share:Q", title="% of the class", scale=alt.Scale(scheme="blues", domain=[0, 100])
        ),
        tooltip=["truth", "prediction", alt.Tooltip("share:Q", format=".1f"), "pixels"],
    )
    .properties(height=26 * len(CLASSES), width=26 * len(CLASSES)),
)
st.caption(loaders.plain(
    f"{run.name} iter_{at} on {result.split} ({result.num_images} images, "
    f"{result.resolution}): each row is a ground-truth class, its pixels split by what was "
    "predicted (rows sum to 100 %; an empty row: the class is absent from the labels)."
))  # fmt: skip
