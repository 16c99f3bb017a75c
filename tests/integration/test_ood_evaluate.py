"""The out-of-domain sets through `src.evaluate` (tiny model, real shared files) and bad input stopping the run
before any model loads."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from omegaconf import DictConfig

from src.data.lareqa import DataFormatError
from src.evaluation.artifacts.per_query import load_per_query
from tests.conftest import ROOT
from tests.integration.helpers import mlflow_runs

SHARED = ROOT.parent / "shared" / "data"
DATA = ROOT / "data" if (ROOT / "data" / "sib200").exists() else SHARED
THREE = "[en,de,zh]"
# The domain_shift preset cut to three languages a set: every kind and format, seconds with the tiny model.
SMALL = ["~data.eval.xquad_r", f"data.eval.ntrex.languages={THREE}", f"data.eval.ntrex_doc.languages={THREE}",
         f"data.eval.ntrex_bitext.languages={THREE}", f"data.eval.sib200.languages={THREE}",
         "data.eval.tico19.languages=[en,ar,zh]", "data.eval.tico19_medical.languages=[en,ar,zh]",
         "data.eval.tatoeba.languages=[de,zh,en]"]


@pytest.fixture(autouse=True)
def own_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each in-process run logs to its own store (MLflow keeps the last URI in a global)."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model whose vocabulary comes from a few of the sets' texts (random weights: shapes, not quality)."""
    from src.data.sib200 import load_sib200
    from src.model.weights.tiny import build_tiny_model

    texts = [t for rows in load_sib200(DATA / "sib200", ["en", "de", "zh"], "s").tables[0].texts.values()
             for t in rows]
    return build_tiny_model(texts, tmp_path_factory.mktemp("tiny") / "model", vocab_size=400)


def compose_eval(tmp_path: Path, model: Path, data_dir: Path, *overrides: str) -> DictConfig:
    """`python -m src.evaluate data=domain_shift` on the tiny model with a tmp store and run folder."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("evaluate", overrides=[
            "data=domain_shift", *SMALL, "model=tiny", f"model.pretrained={model}", "trainer.precision=32-true",
            f"paths.data_dir={data_dir}", f"logger.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
            f"paths.output_dir={tmp_path / 'run'}", f"paths.cache_dir={tmp_path / 'cache'}", *overrides])


def test_every_out_of_domain_set_in_one_run(tmp_path: Path, tiny: Path) -> None:
    from src.evaluate import evaluate

    metrics = evaluate(compose_eval(tmp_path, tiny, DATA, "eval.debias=center", "eval.trec_depth=3"))
    # The LAReQA grid over NTREX headlines has every setting; translation retrieval no mono; Tatoeba no multi.
    for key in ("ntrex/mono/map", "ntrex/cross/map/de-zh", "ntrex/multi/rank_distance", "ntrex_doc/multi/map",
                "ntrex_bitext/cross/r1", "ntrex_bitext/multi/rank_distance", "sib200/cross/r1/de-zh",
                "sib200.center/multi/map", "tico19/multi/map", "tico19_medical/cross/r1", "tatoeba/cross/r1/de-en",
                "tatoeba/cross/r1/en-zh"):
        assert key in metrics and np.isfinite(metrics[key]), key
    for name in ("ntrex_bitext", "sib200", "tico19", "tico19_medical", "tatoeba"):
        assert not [k for k in metrics if k.startswith((f"{name}/mono/", f"{name}.center/mono/"))], name
    assert not [k for k in metrics if k.startswith("tatoeba/multi/")]
    assert "tatoeba/cross/map/de-zh" not in metrics  # X <-> English only
    run = mlflow_runs(tmp_path / "mlflow.db")[0]
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert (params["data.eval.ntrex.domain"], params["data.eval.sib200.domain"], params["data.eval.tico19.domain"],
            params["data.eval.tatoeba.domain"]) == ("news", "web", "medical", "everyday")
    out = tmp_path / "run" / "eval"
    sib = load_per_query(out / "sib200" / "per_query.npz")
    assert sib.label_name == "topic" and len(set(sib.labels["en"].tolist())) == 7 and len(sib.qids["en"]) == 1004
    assert (out / "sib200" / "by_topic.csv").read_text().count("\n") == 8  # header + 7 topics
    origins = (out / "tico19" / "by_origin.csv").read_text().splitlines()
    assert {line.split(",")[0] for line in origins[1:]} == {"PubMed", "CMU", "Wikipedia", "Wikivoyage", "Wikisource",
                                                             "Wikinews"}
    medical = load_per_query(out / "tico19_medical" / "per_query.npz")
    assert set(medical.labels["ar"].tolist()) == {"PubMed", "CMU"} and len(medical.qids["ar"]) == 1080
    lines = load_per_query(out / "ntrex_bitext" / "per_query.npz")
    assert len(set(lines.clusters["de"].tolist())) == 123  # the document is the randomisation unit
    assert (out / "tatoeba" / "trec" / "run.cross.trec").is_file()
    assert not (out / "tatoeba" / "trec" / "run.multi.trec").exists()


def _copy(src: Path, dst: Path) -> Path:
    """A writable copy of a shared set folder (shared/ is read-only)."""
    shutil.copytree(src, dst, symlinks=False)
    for p in dst.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst


def _defect_ntrex(root: Path) -> None:
    f = root / "ntrex128" / "NTREX-128" / "newstest2019-ref.deu.txt"
    f.write_text("".join(f.read_text(encoding="utf-8").splitlines(keepends=True)[:-1]), encoding="utf-8")


def _defect_sib(root: Path) -> None:
    f = root / "sib200" / "data" / "annotated" / "zho_Hans" / "dev.tsv"
    rows = f.read_text(encoding="utf-8").splitlines(keepends=True)
    f.write_text(rows[0] + "\tscience/technology\tno index here\n" + "".join(rows[2:]), encoding="utf-8")


def _defect_tico(root: Path) -> None:
    import zipfile

    f = root / "tico19" / "data" / "TM" / "all.en-zh.tmx.zip"
    with zipfile.ZipFile(f) as z:
        name, xml = z.namelist()[0], z.read(z.namelist()[0]).decode("utf-8")
    xml = xml.replace('<tuv xml:lang="zh">', '<tuv xml:lang="ja">', 1)
    with zipfile.ZipFile(f, "w") as z:
        z.writestr(name, xml)


def _defect_tatoeba(root: Path) -> None:
    f = root / "tatoeba" / "data" / "tatoeba" / "v1" / "tatoeba.cmn-eng.eng"
    f.write_text(f.read_text(encoding="utf-8") + "One more English line.\n", encoding="utf-8")


@pytest.mark.reliability
@pytest.mark.parametrize(("defect", "error", "message"), [
    (_defect_ntrex, DataFormatError, r"newstest2019-ref\.deu\.txt: 1996 lines, expected 1997"),
    (_defect_sib, DataFormatError, r"zho_Hans/dev\.tsv: line 2 has index_id '', expected a FLORES sentence index"),
    (_defect_tico, DataFormatError, r"all\.en-zh\.tmx\.zip: tuid CMU_1:1 has no <tuv xml:lang=\"zh\"> \(it has en, ja\)"),
    (_defect_tatoeba, DataFormatError, r"tatoeba\.cmn-eng\.cmn has 1000 lines, .*tatoeba\.cmn-eng\.eng 1001"),
])
def test_bad_input_stops_before_the_model_loads(tmp_path: Path, defect, error, message) -> None:
    from src.evaluate import evaluate

    root = tmp_path / "data"
    for name in ("ntrex128", "sib200", "tico19", "tatoeba"):
        _copy(SHARED / name, root / name)
    defect(root)
    # A model path that does not exist: reaching the model would fail differently.
    with pytest.raises(error, match=message):
        evaluate(compose_eval(tmp_path, tmp_path / "no-model", root))
    assert mlflow_runs(tmp_path / "mlflow.db") == [] and not (tmp_path / "run" / "eval").exists()


def test_missing_language_file_names_it(tmp_path: Path) -> None:
    from src.evaluate import evaluate

    root = tmp_path / "data"
    _copy(SHARED / "tatoeba", root / "tatoeba")
    (root / "tatoeba" / "data" / "tatoeba" / "v1" / "tatoeba.deu-eng.deu").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing file .*tatoeba\.deu-eng\.deu \(languages with files here"):
        evaluate(compose_eval(tmp_path, tmp_path / "no-model", root,
                              "~data.eval.ntrex", "~data.eval.ntrex_doc", "~data.eval.ntrex_bitext",
                              "~data.eval.sib200", "~data.eval.tico19", "~data.eval.tico19_medical"))
    assert mlflow_runs(tmp_path / "mlflow.db") == []
