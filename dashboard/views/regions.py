"""Region sampling: one RCCR step on one image pair, computed live with a checkpoint."""

import loaders
import pandas as pd
import streamlit as st

from rccr.config import NEGATIVE_SAMPLING, POSITIVE_SAMPLING
from rccr.data import DataError
from rccr.method.memory_bank import DOMAIN_AUGMENTED, DOMAIN_NAMES, DOMAIN_TARGET
from rccr.runs import RunError
from rccr.viz import region_pictures as draw

st.title("Region sampling")
st.caption(
    "A CutMix box of the target image is pasted into a source image, then colour and blur "
    "augmentation: the augmented image. Every feature cell inside the box is an anchor "
    "(student embedding of the augmented image); its positive is the teacher's embedding of "
    "the clean target at the same cell. Negatives come from other cells of both images."
)
found = loaders.runs_or_stop()
usable = loaders.kept_or_stop(
    [r for r in found.runs if r.checkpoints and r.config and r.config.train.mode == "rccr"],
    "Region sampling needs an RCCR run (`train.mode=rccr`) with a checkpoint: only RCCR "
    "trains the projection head whose embeddings are sampled.",
)

run = loaders.pick_run(found, usable, "Run", key="regions.run")
config = run.config
assert config is not None
iterations = list(run.checkpoints)
wanted = loaders.query_int("checkpoint")
checkpoint = st.selectbox(
    "Checkpoint",
    iterations,
    index=iterations.index(wanted) if wanted in iterations else len(iterations) - 1,
    format_func=lambda i: f"iter_{i}",
    key="regions.checkpoint",
)
st.query_params["checkpoint"] = str(checkpoint)

stride = 8  # DeepLab-v2's output stride; boxes and cells are multiples of it
width, height = (side // stride * stride for side in config.data.val_size)
data, sampling = st.columns(2)
with data:
    split = st.radio("Target split", ["val", "train"], horizontal=True, key="regions.split")
    target_list = config.data.val_list if split == "val" else config.data.target_list
    target_args: loaders.DatasetArgs = (
        "cityscapes", config.data.target_root, split, (width, height), target_list
    )  # fmt: skip
    source_args: loaders.DatasetArgs = (
        config.data.source, config.data.source_root, "", (width, height), config.data.source_list
    )  # fmt: skip
    try:
        loaders.check_data(config, found.root, split)
        target_set = loaders.dataset(*target_args)
        source_set = loaders.dataset(*source_args)
    except (DataError, OSError, ValueError) as exc:  # PathError is a ValueError
        st.error(
            f"The images named in {loaders.code(f'{run.name}/config.yaml')} (data.source_root "
            f"= {loaders.code(config.data.source_root)}, data.target_root = "
            f"{loaders.code(config.data.target_root)}) cannot be read: {loaders.plain(exc)}"
        )
        st.stop()
    first_image = min(loaders.query_int("image") or 0, len(target_set) - 1)
    tgt_index = st.number_input(
        "Target image", 0, len(target_set) - 1, first_image, key="regions.target"
    )
    src_index = st.number_input("Source image", 0, len(source_set) - 1, 0, key="regions.source")
    seed = st.number_input("Seed (box, augmentation, negatives)", 0, 10**6, 0, key="regions.seed")
with sampling:
    random_box = st.checkbox("Random box size, as in training", key="regions.random_box")
    box_ratio = st.slider(
        "Box area (share of the image)", 0.05, 1.0, 0.25, 0.05,
        disabled=random_box, key="regions.box",
    )  # fmt: skip
    threshold = st.slider(
        "Confidence threshold", 0.0, 1.0, config.method.confidence_threshold, 0.01,
        key="regions.threshold",
    )  # fmt: skip
    positive = st.radio(
        "Positive sampling", POSITIVE_SAMPLING, horizontal=True, key="regions.positive",
        index=POSITIVE_SAMPLING.index(config.method.positive_sampling),
    )  # fmt: skip
    negative = st.radio(
        "Negative sampling", NEGATIVE_SAMPLING, horizontal=True, key="regions.negative",
        index=NEGATIVE_SAMPLING.index(config.method.negative_sampling),
    )  # fmt: skip
    per_domain = st.select_slider(
        "Negatives drawn from each image", [8, 16, 32, 64, 128, 256], 32, key="regions.negatives"
    )
st.query_params["image"] = str(tgt_index)

try:
    with st.spinner(f"Running iter_{checkpoint} on CPU"):
        sample = loaders.region_sample(
            run.name,
            str(found.root),
            checkpoint,
            (source_args, int(src_index)),
            (target_args, int(tgt_index)),
            seed=int(seed),
            box_ratio=None if random_box else box_ratio,
            confidence_threshold=threshold,
            positive_sampling=positive,
            negative_sampling=negative,
            negatives_per_domain=per_domain,
        )
except (RunError, DataError, ValueError, OSError) as exc:
    st.error(loaders.plain(exc))
    st.stop()

code = loaders.code
st.info(
    f"Checkpoint {code(f'{run.name}/checkpoints/iter_{checkpoint}.pt')}; target image "
    f"{code(target_set.pairs[tgt_index].name)} ({split}, from "
    f"{code(config.data.target_root)}); source image {code(source_set.pairs[src_index].name)} "
    f"(from {code(config.data.source_root)}); both at {width}x{height}. Positive sampling "
    f"'{positive}', negative sampling '{negative}'."
)
kept = sample.anchor_kept
metrics = st.columns(5)
metrics[0].metric("Anchors", len(kept), help="feature cells inside the box")
metrics[1].metric("Kept", int(kept.sum()), help="anchors that pass positive sampling")
metrics[2].metric("Negatives", len(sample.negative_labels), help="drawn from both images")
metrics[3].metric(
    "Similarity", f"{sample.positive_similarity.mean():.2f}",
    help="mean cosine similarity of the anchors with their positives",
)  # fmt: skip
metrics[4].metric("Contrastive loss", f"{round(sample.loss, 3) + 0.0:.3f}")  # no "-0.000"

scale = draw.display_scale(width)
target_rgb = draw.enlarge(draw.to_rgb(sample.tgt_image), scale)
aug_rgb = draw.enlarge(draw.to_rgb(sample.aug_image), scale)
left, right = st.columns(2)
left.image(draw.outline_box(target_rgb, sample.box, scale), caption="Clean target image")
right.image(
    draw.outline_box(aug_rgb, sample.box, scale),
    caption="Augmented image: target box pasted into the source, then colour and blur",
)

st.header("Teacher on the clean target")
left, right = st.columns(2)
left.image(
    draw.grid_to_image(draw.labels_rgb(sample.pseudo_label), sample.stride, scale),
    caption="Pseudo-labels (one per feature cell)",
)
right.image(
    draw.confidence_image(sample.confidence, threshold, sample.stride, scale),
    caption=f"Confidence (viridis: dark low, yellow high); white outlines: above {threshold:.2f}",
)
shown_labels = sample.pseudo_label.flatten().tolist() + sample.negative_labels.tolist()
st.image(draw.class_legend(shown_labels, width=2 * target_rgb.shape[1]))

st.header("Anchors and positives")
colours = [draw.KEPT if k else draw.DROPPED for k in kept.tolist()]
left, right = st.columns(2)
left.image(
    draw.shade_cells(aug_rgb, sample.anchor_cells, colours, sample.stride, scale),
    caption="Anchors on the augmented image: green passes positive sampling, red does not",
)
right.image(
    draw.shade_cells(
        target_rgb,
        sample.anchor_cells,
        draw.similarity_colours(sample.positive_similarity),
        sample.stride,
        scale,
        alpha=0.7,
    ),
    caption="Positives at the same cells of the clean target, by cosine similarity to the "
    "anchor (magma: bright = similar)",
)

st.header("Negatives")
anchor = st.number_input(
    f"Anchor whose class-aware removal is shown (0 to {len(kept) - 1})",
    0, max(len(kept) - 1, 0), 0, key="regions.anchor",
)  # fmt: skip
removed = sample.negative_removed[anchor] if len(kept) else sample.negative_labels < 0
row, col = (int(v) for v in sample.anchor_cells[anchor]) if len(kept) else (0, 0)
label = int(sample.anchor_labels[anchor]) if len(kept) else -1
st.caption(
    f"Anchor {anchor} at cell ({row}, {col}) (outlined in yellow), pseudo-label "
    f"**{loaders.class_name(label)}**. Dots are negatives in their class colour; hollow "
    "crossed dots are removed for this anchor by class-aware sampling (same pseudo-label)."
)
left, right = st.columns(2)
for column, domain, base, title in (
    (left, DOMAIN_AUGMENTED, aug_rgb, f"from the {DOMAIN_NAMES[DOMAIN_AUGMENTED]}"),
    (right, DOMAIN_TARGET, target_rgb, f"from the {DOMAIN_NAMES[DOMAIN_TARGET]}"),
):
    here = sample.negative_domains == domain
    picture = draw.mark_cells(
        base,
        sample.negative_cells[here],
        sample.negative_labels[here],
        removed[here],
        sample.stride,
        scale,
    )
    if domain == DOMAIN_AUGMENTED and len(kept):
        picture = draw.outline_cell(picture, sample.anchor_cells[anchor], sample.stride, scale)
    column.image(picture, caption=f"{int(here.sum())} negatives {title}")

by_class = pd.DataFrame(
    {
        "class": [loaders.class_name(int(k)) for k in sample.negative_labels],
        "domain": [int(d) for d in sample.negative_domains],
        "removed": removed.tolist(),
    }
)
st.dataframe(
    by_class.groupby("class")
    .agg(
        augmented=("domain", lambda d: int((d == DOMAIN_AUGMENTED).sum())),
        clean_target=("domain", lambda d: int((d == DOMAIN_TARGET).sum())),
        removed=("removed", "sum"),
    )
    .reset_index(),
    hide_index=True,
    column_config={
        "augmented": "negatives from the augmented image",
        "clean_target": "negatives from the clean target",
        "removed": "removed for this anchor",
    },
)
