"""evaluate(): h and z side by side (retrieval + linear probes), and the written report (JSON, markdown, PNGs)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from itemtower.evaluation import plots
from itemtower.evaluation import report as R
from itemtower.evaluation.evaluate import EvalReport, evaluate, probe_table, save_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def evaluated(tiny_model):
    """The tiny model evaluated without baselines (fast): (report, model_dir, items)."""
    model_dir, items = tiny_model
    rep = evaluate(model_dir, items, with_baselines=False, n_view_items=100, log=_quiet)
    return rep, model_dir, items


@pytest.fixture(scope="module")
def evaluated_without_resume(tiny_model, tmp_path_factory):
    """The same model copied without resume.pt (an exported model), evaluated: (report, model_dir, items)."""
    model_dir, items = tiny_model
    d = tmp_path_factory.mktemp("exported") / "model"
    shutil.copytree(model_dir, d, ignore=shutil.ignore_patterns("resume.pt"))
    return evaluate(d, items, with_baselines=False, n_view_items=100, log=_quiet), d, items


def _is_png(path, min_bytes: int = 10_000) -> bool:
    data = path.read_bytes()
    return data[:8] == PNG_MAGIC and len(data) >= min_bytes


def test_z_is_scored_and_probed_next_to_h_when_resume_exists(evaluated):
    """With resume.pt, z gets the same retrieval metrics as h and every probed field has both accuracies."""
    rep, _, items = evaluated
    assert isinstance(rep, EvalReport) and rep["z"]["available"] is True
    assert set(rep["methods"]) == {"itemtower (h)", "itemtower (z)"}
    assert rep["methods"]["itemtower (z)"].keys() == rep["methods"]["itemtower (h)"].keys()
    z = rep.embeddings["z"]
    assert z.shape == (len(items), rep["z"]["proj_dim"]) and z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    probe = rep["linear_probe"]
    assert probe and set(probe) <= set(rep["fields"]) and len(probe) <= 6
    for row in probe.values():
        assert 0.0 <= row["h"] <= 1.0 and 0.0 <= row["z"] <= 1.0 and 0.0 <= row["majority"] <= 1.0
        assert row["n_classes"] >= 2
    json.loads(json.dumps(rep))  # the arrays stay out of the JSON


def test_h_matches_the_served_embedder(evaluated):
    """The h that evaluate scores is exactly what the service's Embedder returns for the same items."""
    from itemtower.artifacts import Embedder

    rep, model_dir, items = evaluated
    np.testing.assert_allclose(rep.embeddings["h"], Embedder.load(model_dir).embed(items), atol=1e-6)


def test_z_is_skipped_with_a_note_without_resume(evaluated_without_resume):
    """Without resume.pt there is no z row, z probe accuracies are None, h is still probed, and a note says why."""
    rep, _, _ = evaluated_without_resume
    assert rep["z"]["available"] is False and "z" not in rep.embeddings
    assert "itemtower (z)" not in rep["methods"] and "itemtower (h)" in rep["methods"]
    assert any("resume.pt" in n for n in rep["notes"])
    assert rep["linear_probe"] and all(r["z"] is None and r["h"] is not None for r in rep["linear_probe"].values())


def test_probe_on_an_encoded_field_beats_majority(evaluated):
    """color is written into every title, so probes on h and z decode it far above the majority rate."""
    rep, _, _ = evaluated
    row = rep["linear_probe"]["color"]
    assert row["h"] > row["majority"] + 0.3 and row["z"] > row["majority"] + 0.3


def test_probe_table_separates_encoded_from_unrelated_fields():
    """A field written into the embedding is decoded near perfectly; a field independent of it is not."""
    rng = np.random.default_rng(0)
    n = 600
    enc = rng.integers(0, 4, n)
    noise = rng.integers(0, 4, n)
    x = rng.normal(size=(n, 16)).astype(np.float32)
    x[np.arange(n), enc] += 4.0
    items = [{"id": str(i), "std": {"enc": [f"e{enc[i]}"], "noise": [f"n{noise[i]}"], "one": ["x"]}}
             for i in range(n)]
    table, info = probe_table({"h": x}, items, ["enc", "noise", "one"], n_items=500, seed=0)
    assert "one" not in table  # a single class cannot be probed
    assert info["n_items"] == 500
    assert table["enc"]["h"] > 0.9 > table["enc"]["majority"] + 0.5
    assert table["noise"]["h"] < table["enc"]["h"] - 0.4
    # a hidden answer key (not in the items) is probed the same way, on the same sampled rows
    hidden_items = [{"id": it["id"], "std": {}} for it in items]
    t2, _ = probe_table({"h": x}, hidden_items, [], n_items=500, seed=0,
                        hidden={"enc": [f"e{v}" for v in enc], "noise": [f"n{v}" for v in noise]})
    assert t2["enc"]["h"] == table["enc"]["h"] and t2["noise"]["h"] == table["noise"]["h"]


def test_report_has_both_plots_as_valid_pngs(evaluated, tmp_path):
    """report.md embeds loss.png and map.png, both real PNGs, and report.json records how the map was made."""
    rep, model_dir, items = evaluated
    out = save_report(rep, tmp_path / "r", model_dir, rep.evaluated_items, rep.embeddings, "color",
                      map_method="tsne")
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "](loss.png)" in md and "](map.png)" in md
    assert "| color |" in md and "probe on z" in md
    assert _is_png(out / "loss.png") and _is_png(out / "map.png")
    meta = json.loads((out / "report.json").read_text(encoding="utf-8"))["plots"]
    assert meta["map"]["method"] == "t-SNE" and meta["map"]["color_field"] == "color"
    assert meta["map"]["n_points"] == len(items)


def test_save_report_without_extra_arguments_writes_json_and_markdown_only(evaluated, tmp_path):
    """The old call save_report(report, out_dir) still works and draws nothing."""
    rep, _, _ = evaluated
    out = save_report(rep, tmp_path / "r")
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md"]
    assert "Linear probe" in (out / "report.md").read_text(encoding="utf-8")
    assert "plots" not in json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_unknown_color_field_fails_before_writing(evaluated, tmp_path):
    """A colour field the items do not have is a ValueError naming the choices, and nothing is written."""
    rep, model_dir, items = evaluated
    with pytest.raises(ValueError, match="category"):
        R.write_report(rep, tmp_path / "r", model_dir, items, rep.embeddings["h"], "colour")
    assert not (tmp_path / "r").exists()


def test_map_falls_back_to_pca_when_tsne_is_over_budget(evaluated, tmp_path, monkeypatch):
    """When the pilot run predicts t-SNE over the time budget, the map is a 2-D PCA and the caption says so."""
    rep, _, items = evaluated
    monkeypatch.setattr(plots, "TSNE_PILOT", 50)
    info = plots.map_plot(rep.embeddings["h"], items, "category", tmp_path / "m.png", tsne_budget_s=1e-6)
    assert info["method"] == "PCA" and "budget" in info["caption"]
    assert _is_png(tmp_path / "m.png")


def test_a_catalog_smaller_than_the_neighbour_count_still_gets_a_full_report(tiny_model, tmp_path):
    """Twenty items (fewer than the 50 neighbours the metrics ask for) are evaluated and reported with both plots."""
    model_dir, items = tiny_model
    rep = evaluate(model_dir, items[:20], with_baselines=True, n_view_items=20, log=_quiet)
    assert 0.0 <= rep["methods"]["itemtower (h)"]["consistency@10:color"] <= 1.0
    out = save_report(rep, tmp_path / "r", model_dir, rep.evaluated_items, rep.embeddings)
    assert _is_png(out / "map.png") and _is_png(out / "loss.png")


def test_epoch_ends_are_recovered_from_epoch_means_with_a_short_last_epoch():
    """Epochs of 4 steps and a last one cut to 2 are found from the per-epoch mean losses."""
    loss = [5, 4, 3, 2, 2, 2, 1, 1, 1, 0.5]
    means = [np.mean(loss[0:4]), np.mean(loss[4:8]), np.mean(loss[8:10])]
    assert plots._epoch_end_steps(loss, means) == [4.0, 8.0, 10.0]
    assert plots._epoch_end_steps(loss, [None, None]) == [5.0, 10.0]


def test_hidden_labels_are_scored_as_consistency():
    """An answer key passed as `labels` is scored as consistency@10 without being an STD field of the items."""
    import numpy as np

    from itemtower.evaluation.evaluate import score_embeddings

    emb = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)  # three tight clusters of four items
    items = [{"id": str(i), "std": {}} for i in range(12)]
    lab = [i // 4 for i in range(12)]
    out = score_embeddings(emb, items, [], labels={"cluster": lab, "shuffled": lab[::-1][:6] + lab[:6]})
    assert out["consistency@10:cluster"] > out["consistency@10:shuffled"]
