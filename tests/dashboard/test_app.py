"""The dashboard's pages under Streamlit's AppTest, over runs made by the real trainer."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from rccr.data import Cityscapes
from rccr.runs import load_run

OpenPage = Callable[..., AppTest]
BrokenRoot = Callable[[str], Path]
PAGES = ("runs", "training", "predictions", "regions", "tsne", "iou", "health")
BROKEN = (
    "missing_root",
    "empty_root",
    "being_written",
    "bad_metrics",
    "bad_eval",
    "bad_npz",
    "bad_checkpoint",
    "bad_config",
    "not_a_run",
    "link_outside",
    "data_gone",
    "hostile",
)
MARKER = "payload-ran"  # what conftest's malicious checkpoint would create
# What conftest writes into broken roots "markup" and "list_outside":
MARKUP = "![img](http://127.0.0.1:9/p.png) [link](http://127.0.0.1:9/) **bold** <b>tag</b>"
MARKUP_RUN = "[link](x) **bold** _it_ `code"
SECRET = "TOP-SECRET-LINE"


MARKDOWN = ("error", "warning", "info", "success", "title", "header", "subheader", "caption",
            "markdown")  # fmt: skip


def _markdown(app: AppTest) -> list[str]:
    """Every text the page renders as Markdown: messages, headings, captions, markdown,
    expander labels."""
    bodies = [str(element.value) for kind in MARKDOWN for element in getattr(app, kind)]
    return bodies + [element.label for element in app.expander]


def _seen(body: str) -> str:
    """Markdown as a reader sees it: backslash escapes and zero-width spaces removed."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", body).replace("\u200b", "")


def _text(app: AppTest) -> str:
    """Everything a reader sees as text: messages, headings, captions, metrics, markdown."""
    parts = [_seen(body) for body in _markdown(app)]
    parts += [f"{m.label}: {m.value}" for m in app.metric]
    return "\n".join(parts)


def _html(app: AppTest) -> str:
    """The page's Markdown rendered by a CommonMark renderer (as Streamlit's does)."""
    markdown_it = pytest.importorskip("markdown_it")
    renderer = markdown_it.MarkdownIt("commonmark")
    return "\n".join(renderer.render(body) for body in _markdown(app))


def _charts(app: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in app.get("vega_lite_chart")]


def _clean(app: AppTest) -> AppTest:
    assert not app.exception, [e.value for e in app.exception]
    return app


@pytest.mark.parametrize("page", PAGES)
def test_app__every_page_renders_the_fixture(
    runs_root: Path, open_page: OpenPage, page: str
) -> None:
    app = _clean(open_page(runs_root, page))
    assert not app.error and not app.warning, _text(app)
    text = _text(app)
    if page == "runs":
        table = app.dataframe[0].value
        assert sorted(table["run"]) == ["dacs", "rccr"]
        assert list(table["status"]) == ["finished"] * 2 and list(table["last at"]) == [4, 4]
        assert sorted(table["mode"]) == ["dacs", "rccr"]
        rccr = load_run(runs_root / "rccr")
        row = table[table["run"] == "rccr"].iloc[0]
        assert row["last mIoU"] == pytest.approx(rccr.evals[4].miou["mIoU19"])
        assert "train.mode" in list(app.dataframe[1].value["key"])  # the config diff
        widths = json.loads(app.dataframe[0].proto.columns)
        widths.pop("_index", None)  # hidden
        assert set(widths) == set(table.columns)  # every column sized ...
        assert sum(c["width"] for c in widths.values()) <= 940  # ... to fit 1400 px
        assert len(app.code) == 2  # both configs
    elif page == "training":
        table = app.dataframe[0].value
        assert sorted(table["run"]) == ["dacs", "rccr"] and set(table["of"]) == {4}
        assert list(table["status"]) == ["finished"] * 2 and (table["it/s"] > 0).all()
        assert table["time left (min)"].isna().all()  # nothing is running
        miou, curves = _charts(app)
        assert miou["encoding"]["y"]["field"] == "mIoU"
        assert curves["facet"]["field"] == "quantity"
        shown = set(curves["facet"]["sort"])  # the quantities the runs logged, in order
        assert {"learning rate (backbone)", "contrastive weight lambda(t)",
                "loss: regional contrast (before lambda)", "throughput (iterations / s)",
                "loss: ClassMix cross-entropy (weighted)"} <= shown  # fmt: skip
        assert not app.toggle[0].value  # no run is live: not following
    elif page == "predictions":
        assert len(app.image) == 1 and len(_charts(app)) == 1  # the picture, the confusion
        assert "Pixel accuracy on this image: dacs iter_4 " in text
        assert "dacs iter_4 on val (4 images" in text
        assert [s.value for s in app.selectbox][:3] == ["dacs", 4, "(none)"]
    elif page == "iou":
        assert len(_charts(app)) == 3
        table = app.dataframe[0].value
        assert table.shape == (20, 2) and len(app.download_button) == 1
        assert table.index[0] == "mIoU19" and "Every run at iteration 4." in text
    elif page == "tsne":
        assert len(_charts(app)) == 2
        assert "features/iter_2.npz" in text and "features/iter_4.npz" in text
    elif page == "health":
        charts = _charts(app)  # one faceted chart per group: teacher, anchors, negatives,
        assert len(charts) == 4 and "Analysis only" in text  # bank features (checkpoints)
        assert all(c["facet"]["field"] == "diagnostic" for c in charts)
        headers = [h.value for h in app.header]
        assert headers == ["Teacher pseudo-labels", "Anchors (positive sampling)",
                           "Negatives (negative sampling)",
                           "Bank features (at checkpoints)"]  # fmt: skip
    else:
        assert len(app.image) == 9 and len(app.metric) == 5  # 8 pictures and the legend
        assert "rccr/checkpoints/iter_4.pt" in text and "(val, from" in text


def _metric(app: AppTest, label: str) -> str:
    return next(m.value for m in app.metric if m.label.startswith(label))


def test_predictions__a_second_run_and_another_image(runs_root: Path, open_page: OpenPage) -> None:
    app = open_page(runs_root, "predictions")
    app.selectbox(key="pred.compare").select("rccr").run()
    text = _text(_clean(app))
    assert "dacs iter_4 " in text and "rccr iter_4 " in text  # both accuracies
    app.number_input(key="pred.index").set_value(2).run()
    assert not _clean(app).error and len(app.image) == 1
    app.selectbox(key="pred.confusion").select(2).run()
    assert "dacs iter_2 on val" in _text(_clean(app))
    app.radio(key="pred.source").set_value("an image of mine").run()
    assert "Choose an image file" in _text(_clean(app)) and not app.image


def test_runs__choosing_runs_diffs_their_configs(runs_root: Path, open_page: OpenPage) -> None:
    app = open_page(runs_root, "runs")
    app.selectbox(key="runs.first").select("rccr").run()
    diff = _clean(app).dataframe[1].value
    assert list(diff.columns) == ["key", "rccr", "dacs"]
    assert diff.set_index("key").loc["train.mode"].tolist() == ["rccr", "dacs"]
    assert app.query_params["run"] == "rccr"


BENCHMARK_RECORDS = Path(__file__).resolve().parents[2] / "benchmarks/results/toy/runs"


def test_health__the_committed_benchmark_records_side_by_side(open_page: OpenPage) -> None:
    """The README's `rccr dashboard --runs benchmarks/results/toy/runs`: records without
    checkpoints, RCCR and the control chosen, every diagnostic group drawn."""
    app = open_page(BENCHMARK_RECORDS, "health", run=["rccr_seed0", "rccr_no_contrast_seed0"])
    assert app.multiselect(key="health.runs").value == ["rccr_seed0", "rccr_no_contrast_seed0"]
    assert [h.value for h in _clean(app).header] == [
        "Teacher pseudo-labels", "Anchors (positive sampling)",
        "Negatives (negative sampling)", "Bank features (at checkpoints)"]  # fmt: skip
    runs = open_page(BENCHMARK_RECORDS, "runs")
    records = [d for d in BENCHMARK_RECORDS.iterdir() if d.is_dir()]  # the runs, warm start
    assert len(_clean(runs).dataframe[0].value) == len(records) > 1


def test_runs__lists_what_training_skipped(broken_root: BrokenRoot, open_page: OpenPage) -> None:
    app = _clean(open_page(broken_root("skipped"), "runs"))
    table = app.dataframe[0].value.set_index("run")
    assert table.loc["rccr", "skipped"] == 2 and table.loc["dacs", "skipped"] == 0
    app.selectbox(key="runs.first").select("rccr").run()
    skipped = next(d.value for d in _clean(app).dataframe if "what" in d.value.columns)
    assert skipped["what"].tolist() == ["sample source 00003.png", "batch 2"]
    assert skipped["iteration"].tolist() == [1, 3] and "truncated PNG" in skipped["error"][0]
    assert any("skipped.jsonl: 2 skipped" in _seen(e.label) for e in app.expander)


def test_iou__runs_checkpoint_and_heatmap_controls(runs_root: Path, open_page: OpenPage) -> None:
    app = open_page(runs_root, "iou")
    app.multiselect(key="iou.runs").unselect("dacs").run()
    assert list(_clean(app).dataframe[0].value.columns) == ["rccr"]
    colours = [c["encoding"]["color"] for c in _charts(app) if "color" in c["encoding"]]
    by_run = [colour["scale"] for colour in colours if colour["field"] == "run"]
    assert by_run and all(scale["domain"] == ["dacs", "rccr"] for scale in by_run)  # stable
    app.selectbox(key="iou.checkpoint").select(2).run()
    result = load_run(runs_root / "rccr").evals[2]
    shown = _clean(app).dataframe[0].value["rccr"]
    assert shown.iloc[0] == pytest.approx(result.miou["mIoU19"])  # the mIoU row first
    np.testing.assert_allclose(shown.iloc[1:], result.iou)
    app.multiselect(key="iou.runs").select("dacs").run()
    app.selectbox(key="iou.heatmap_run").select("dacs").run()
    heat = _charts(_clean(app))[1]
    assert "IoU" in json.dumps(heat["encoding"]["color"])


def test_tsne__checkpoints_colour_and_class_filter(runs_root: Path, open_page: OpenPage) -> None:
    app = open_page(runs_root, "tsne")
    app.radio(key="tsne.colour").set_value("domain").run()
    assert all(c["encoding"]["color"]["field"] == "domain" for c in _charts(_clean(app)))
    app.radio(key="tsne.colour").set_value("truth").run()  # the toy city has labels
    charts = _charts(_clean(app))
    assert all(c["encoding"]["color"]["field"] == "truth" for c in charts)
    truths = set(np.load(runs_root / "rccr/features/iter_4.npz")["truth"].tolist()) - {255}
    assert truths and len(charts[-1]["encoding"]["color"]["scale"]["domain"]) >= len(truths)
    assert "coloured by true class" in _text(app)
    app.multiselect(key="tsne.checkpoints").unselect(2).run()
    assert len(_charts(_clean(app))) == 1
    present = app.multiselect(key="tsne.classes").value
    app.radio(key="tsne.colour").set_value("class").run()
    app.multiselect(key="tsne.classes").set_value(present[:1]).run()
    legend = _charts(_clean(app))[0]["encoding"]["color"]["scale"]["domain"]
    assert legend == present[:1]  # the legend follows the class filter
    caption = next(c.value for c in _clean(app).caption if "features shown" in c.value)
    assert caption.split(" of ")[0].endswith(str(_class_count(runs_root, present[0])))


def _val_name(runs_root: Path, index: int) -> str:
    return Cityscapes(runs_root.parent / "toy" / "cityscapes", "val").pairs[index].name


def _class_count(runs_root: Path, name: str) -> int:
    from rccr.analysis.bank_embedding import load_bank_snapshot
    from rccr.data.labels import CLASS_NAMES

    labels = load_bank_snapshot(runs_root / "rccr" / "features" / "iter_4.npz").labels
    wanted = CLASS_NAMES.index(name) if name in CLASS_NAMES else None
    return int((labels == wanted).sum()) if wanted is not None else int((labels >= 19).sum())


def test_regions__sampling_controls_change_the_result(runs_root: Path, open_page: OpenPage) -> None:
    app = open_page(runs_root, "regions")
    app.slider(key="regions.box").set_value(1.0).run()
    assert _metric(_clean(app), "Anchors") == "128"  # the whole 16 x 8 feature grid
    app.radio(key="regions.positive").set_value("all").run()
    assert _metric(_clean(app), "Kept") == "128"
    app.radio(key="regions.positive").set_value("confident").run()
    app.slider(key="regions.threshold").set_value(1.0).run()
    assert _metric(_clean(app), "Kept") == "0"  # no confidence exceeds 1
    app.radio(key="regions.negative").set_value("random").run()
    assert _clean(app).dataframe[0].value["removed"].sum() == 0
    app.number_input(key="regions.anchor").set_value(2).run()
    assert "Anchor 2 at cell (0, 2)" in _text(_clean(app))  # anchors in row-major order
    app.checkbox(key="regions.random_box").check().run()
    app.number_input(key="regions.seed").set_value(3).run()
    assert _metric(_clean(app), "Anchors") != "128"
    app.selectbox(key="regions.checkpoint").select(2).run()
    app.number_input(key="regions.target").set_value(3).run()
    text = _text(_clean(app))
    assert "iter_2.pt" in text and "negative sampling 'random'" in text
    assert f"target image `{_val_name(runs_root, 3)}`" in text


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize(
    ("value", "says"),
    [("../rccr", "'..' is refused"), ("rccr/../../..", "'..' is refused"), ("/etc", "absolute")],
)
def test_app__unsafe_run_in_the_url_is_refused(
    runs_root: Path, open_page: OpenPage, page: str, value: str, says: str
) -> None:
    app = _clean(open_page(runs_root, page, run=value))
    assert any("refused" in _seen(e.value) and says in _seen(e.value) for e in app.error)
    assert app.title  # the page still shows, with its default run


@pytest.mark.parametrize("page", PAGES)
def test_app__absolute_path_to_a_real_run_is_refused(
    runs_root: Path, open_page: OpenPage, page: str
) -> None:
    app = _clean(open_page(runs_root, page, run=str(runs_root / "rccr")))
    assert any("absolute paths are refused" in _seen(e.value) for e in app.error)


def test_app__unknown_run_in_the_url_is_named(runs_root: Path, open_page: OpenPage) -> None:
    app = _clean(open_page(runs_root, "iou", run="nope"))
    assert any("no run named 'nope'" in _seen(w.value) for w in app.warning)


@pytest.mark.parametrize(
    ("query", "expect"),
    [
        ({"run": "rccr", "checkpoint": "2", "image": "1"}, "iter_2.pt"),
        ({"checkpoint": "x"}, "expected a non-negative integer"),
        ({"image": "-1"}, "expected a non-negative integer"),
        ({"image": "1"}, "image 1"),
        ({"image": "999"}, "image 3"),  # past the last image: shows the last one
    ],
)
def test_regions__url_parameters(
    runs_root: Path, open_page: OpenPage, query: dict, expect: str
) -> None:
    if expect.startswith("image "):
        expect = f"target image `{_val_name(runs_root, int(expect.split()[1]))}`"
    assert expect in _text(_clean(open_page(runs_root, "regions", **query)))


EXPECT: dict[str, dict[str, str]] = {
    "missing_root": dict.fromkeys(PAGES, "runs folder not found"),
    "empty_root": dict.fromkeys(PAGES, "No runs under"),
    "being_written": {
        "runs": "probably being written",
        "regions": "needs an RCCR run",
        "tsne": "No run has memory-bank snapshots",
        "iou": "probably being written",
    },
    "bad_metrics": dict.fromkeys(PAGES, "metrics.jsonl: line 1 malformed"),
    "bad_eval": dict.fromkeys(PAGES, "iter_2.json: malformed evaluation"),
    "bad_npz": {"tsne": "iter_2.npz: not a memory-bank snapshot"},
    "bad_checkpoint": {"regions": "iter_4.pt: not a loadable checkpoint"},
    "bad_config": {
        "runs": "config.yaml: missing or malformed",
        "regions": "needs an RCCR run",
        "tsne": "config.yaml: malformed",
        "iou": "config.yaml: malformed",
    },
    "not_a_run": dict.fromkeys(PAGES, "not a run directory"),
    "link_outside": dict.fromkeys(PAGES, "outside"),
    "data_gone": {"regions": "toy-gone"},
    "hostile": {
        "runs": "rccr/status.json: malformed: iteration must be a non-negative integer, got inf",
        "iou": "dacs/eval/iter_2.json: malformed evaluation: nested more than 32 deep",
        "tsne": "dacs/config.yaml: not UTF-8 text (byte 6)",
    },
}


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("kind", BROKEN)
def test_app__broken_runs_get_a_clear_message(
    broken_root: Callable[[str], Path], open_page: OpenPage, kind: str, page: str
) -> None:
    app = _clean(open_page(broken_root(kind), page))
    assert app.title or app.error
    expected = EXPECT[kind].get(page)
    if expected is not None:
        assert expected in _text(app), _text(app)


def test_regions__checkpoint_code_never_runs(
    broken_root: Callable[[str], Path], open_page: OpenPage
) -> None:
    root = broken_root("bad_checkpoint")
    app = _clean(open_page(root, "regions", checkpoint="2"))
    assert any("iter_2.pt: not a loadable checkpoint" in _seen(e.value) for e in app.error)
    assert not (root / MARKER).exists()


# Text from users and files is shown as typed, never as Markdown


TAGS = ("<img", "<a ", "<strong>bold", "<em>it", "<b>")  # from MARKUP and MARKUP_RUN


@pytest.mark.parametrize("page", PAGES)
def test_app__markup_in_the_url_is_shown_as_text(
    runs_root: Path, open_page: OpenPage, page: str
) -> None:
    app = _clean(open_page(runs_root, page, run=MARKUP))
    html = _html(app)
    assert not [tag for tag in TAGS if tag in html], html
    # GitHub Markdown links bare URLs whatever the escapes: each one is broken invisibly.
    assert "http://" not in "\n".join(_markdown(app)).replace("\\", "")
    assert f"URL parameter `run` refused: {MARKUP!r}" in _text(app)  # shown as typed


@pytest.mark.parametrize("page", PAGES)
def test_app__markup_in_run_names_and_files_is_shown_as_text(
    broken_root: BrokenRoot, open_page: OpenPage, page: str
) -> None:
    app = _clean(open_page(broken_root("markup"), page))
    html = _html(app)
    assert not [tag for tag in TAGS if tag in html], html
    if page == "runs":
        assert MARKUP_RUN in _text(app) and f"unknown state {MARKUP!r}" in _text(app)


def test_app__a_long_url_parameter_is_quoted_short(runs_root: Path, open_page: OpenPage) -> None:
    app = _clean(open_page(runs_root, "iou", run="x" * 100_000))
    assert max(len(w.value) for w in app.warning) < 1000


# Confinement: a run's config names what the dashboard reads, within bounds


def test_regions__list_file_outside_the_roots_is_refused(
    broken_root: BrokenRoot, open_page: OpenPage
) -> None:
    app = _clean(open_page(broken_root("list_outside"), "regions"))
    text = _text(app)
    assert "data.val_list" in text and "outside the runs root and the run's data roots" in text
    assert SECRET not in text and SECRET not in json.dumps([str(e) for e in app])


def test_regions__image_size_past_the_budget_is_refused(
    broken_root: BrokenRoot, open_page: OpenPage
) -> None:
    app = _clean(open_page(broken_root("huge_val_size"), "regions"))
    assert "data.val_size 16000x8000: more pixels than the dashboard draws" in _text(app)


def test_regions__image_file_past_the_budget_is_refused_unread(
    broken_root: BrokenRoot, open_page: OpenPage
) -> None:
    app = _clean(open_page(broken_root("huge_image"), "regions", image="0"))
    assert "4200x4100 pixels; the dashboard reads images of at most" in _text(app), _text(app)
