"""Chapter 09's study: every method at every label budget and seed, on the same labelled subsets,
chosen on the validation reviews, scored once on the test reviews.

    study = ImdbStudy(fast=False)                 # data, vocabularies, pre-trained models
    result = study.run("results/ch09.json")       # resumes: runs only what the file lacks
    print(result.table()); print(result.gains_table("encoder from scratch"))

The plan (:func:`study_plan`) names the methods, budgets (labels per class) and seeds; its
fingerprint is stored with the records, so records of another plan are never mixed in. Each
record is one (method, budget, seed): test accuracy, seconds, and what the method chose on
validation (its log). In full mode the whole study takes hours on 2 CPU cores, so the course
ships its records (``course_lib/studies/``) and chapter 09 shows them, labelled with the
command, the hardware and the time they took, beside a run it repeats live.

The contamination trap: the fine-tuned encoders (pre-trained and from scratch) are also scored
on 1,000 label-pool reviews they were not trained on but *were pre-trained on* ("seen
validation"), so the chapter can show how a validation set inside the pre-training corpus
flatters pre-training.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from course_lib.environment import fast_mode
from course_lib.experiments import LabelEfficiency, label_efficiency, sample_per_class

STUDY_FORMAT = 1
SEEN_VALIDATION = {"per_class": 500, "seed": 7}


def study_plan(fast: bool) -> dict:
    """Methods, budgets, seeds and settings of chapter 09's study (fast: a smoke test)."""
    seeds = tuple(range(8))
    return {
        "format": STUDY_FORMAT,
        "sample": bool(fast),
        # labels per class: 50 and 500 (100 and 1,000 labels), and the whole pool; fast mode:
        # one seed at 100 per class, a smoke test of every method in about a minute
        "budgets": ({"100": [0]} if fast
                    else {"50": list(seeds), "500": list(seeds), "all": [0, 1]}),
        "windows": 2 if fast else 4,
        "encoder": {"peak_lr": 3e-4, "embedding": "trainable", "dropout": 0.1},
        # Chosen on the validation reviews for the pre-trained encoder, at the choice budget with
        # a seed no reported number uses: keep or freeze the token embeddings, or a lower rate.
        # The encoder from scratch has nothing to preserve: trainable embeddings, the plan's rate.
        "encoder_grid": {"pre-trained": ([{"embedding": "trainable"}] if fast else
                                         [{"embedding": "trainable"}, {"embedding": "frozen"},
                                          {"embedding": "trainable", "peak_lr": 1e-4}]),
                         "scratch": [{"embedding": "trainable"}]},
        "choice": {"budget": "100" if fast else "500", "seeds": [100]},
        # Chapter 05's models; the cheap ones (bag of words, mean of embeddings) get more steps
        # (their validation accuracy still rose at 300), the BiGRU 300 steps (CPU time).
        "word": {"sequence_length": 64 if fast else 512, "embedding_dropout": 0.5,
                 "bow": {"learning_rate": 1e-2, "min_steps": 60 if fast else 1500},
                 "mean": {"learning_rate": 1e-2, "min_steps": 60 if fast else 1500},
                 "bigru": {"learning_rate": 1e-2 if fast else 1e-3,
                           "min_steps": 60 if fast else 300}},
        "fit": {"min_steps": 60 if fast else 300, "max_epochs": 3 if fast else 50,
                "eval_steps": 60, "patience": 3},
        "fit_all": {"max_epochs": 2, "min_steps": 1, "eval_steps": 1},
        "methods": list(METHODS),
    }


METHODS = {
    # name: (family, options)
    "bag of words": ("word", {"kind": "bow"}),
    "BiGRU": ("word", {"kind": "bigru"}),
    "BiGRU, skip-gram init": ("word", {"kind": "bigru", "vectors": True}),
    "mean of embeddings": ("word", {"kind": "mean"}),
    "mean of embeddings, skip-gram init": ("word", {"kind": "mean", "vectors": True}),
    "encoder, linear probe": ("encoder", {"mode": "probe", "pretrained": True}),
    "encoder, pre-trained + fine-tuned": ("encoder", {"mode": "lp-ft", "pretrained": True}),
    "encoder from scratch": ("encoder", {"mode": "lp-ft", "pretrained": False}),
}


def fingerprint(plan: dict, models: dict) -> str:
    """sha256 of the plan and of the pre-trained models' sha256 (what the records depend on)."""
    text = json.dumps({"plan": plan, "models": models}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _budget(key: str):
    return None if key == "all" else int(key)


class ImdbStudy:
    """Everything the study's methods need, built once: chapter 09's splits, the pre-trained
    encoder and word vectors (``course_lib.pretrained``), the reviews encoded for each model."""

    def __init__(self, fast: bool | None = None, verbose: bool = True):
        from course_lib import language, rnn, word_vectors
        from course_lib.imdb_methods import encode_review_windows

        fast = fast_mode() if fast is None else bool(fast)
        self.plan = study_plan(fast)
        mlm, self.vocabulary, self.mlm_meta = language.pretrained_encoder(fast=fast,
                                                                          verbose=verbose)
        recipe = self.mlm_meta["recipe"]
        self.splits = language.recipe_splits(recipe)
        s = self.splits
        self.config = {k: recipe[k] for k in language.ARCHITECTURE_KEYS}
        self.encoder_weights = mlm.get_layer("encoder").get_weights()
        windows = self.plan["windows"]
        self.windows = {name: encode_review_windows(self.vocabulary, texts, recipe["max_len"],
                                                    windows)
                        for name, texts in (("pool", s.pool_texts), ("test", s.test_texts),
                                            ("val", s.validation_texts))}
        self.vectors, word_vocabulary, self.sgns_meta = word_vectors.pretrained_vectors(
            fast=fast, verbose=verbose)
        vectorizer = rnn.TextVectorizer(word_vocabulary, self.plan["word"]["sequence_length"])
        self.word_ids = {name: vectorizer(list(rnn.clean_reviews(texts)))
                         for name, texts in (("pool", s.pool_texts), ("test", s.test_texts),
                                             ("val", s.validation_texts))}
        self.word_vocab_size = len(word_vocabulary)
        seen = sample_per_class(s.pool_labels, SEEN_VALIDATION["per_class"] if not fast else 50,
                                SEEN_VALIDATION["seed"])
        self.seen_rows = np.sort(seen)
        self.models = {"imdb_mlm": self.mlm_meta["sha256"], "imdb_sgns": self.sgns_meta["sha256"]}
        self.log: list[dict] = []
        self.feature_cache: dict = {}
        self.choices: dict = {}

    def methods(self, budget_key: str) -> dict:
        """The study's methods for one budget (the full-label budget trains fewer epochs)."""
        from course_lib.imdb_methods import encoder_method, word_method

        fit = {**self.plan["fit"], **(self.plan["fit_all"] if budget_key == "all" else {})}
        out = {}
        for name in self.plan["methods"]:
            family, options = METHODS[name]
            log = _Tagged(self.log, name, budget_key)
            if family == "word":
                word = self.plan["word"]
                kind = word[options["kind"]]
                out[name] = word_method(
                    options["kind"], self.word_ids["pool"], self.word_ids["test"],
                    (self.word_ids["val"], self.splits.validation_labels),
                    vocab_size=self.word_vocab_size,
                    vectors=self.vectors if options.get("vectors") else None,
                    embed_dim=self.vectors.shape[1], embedding_dropout=word["embedding_dropout"],
                    learning_rate=kind["learning_rate"],
                    settings=fit if budget_key == "all"
                    else {**fit, "min_steps": kind["min_steps"], "max_epochs": 200}, log=log)
            else:
                arm = "pre-trained" if options["pretrained"] else "scratch"
                enc = {**self.plan["encoder"], **self.choices.get(arm, {})}
                method = encoder_method(
                    self.config, self.encoder_weights if options["pretrained"] else None,
                    self.windows["pool"], self.windows["test"],
                    (self.windows["val"], self.splits.validation_labels), mode=options["mode"],
                    peak_lr=enc["peak_lr"], embedding=enc["embedding"], dropout=enc["dropout"],
                    settings=fit, log=log, feature_cache=self.feature_cache)
                out[name] = self._with_seen_validation(method) if options["mode"] == "lp-ft" \
                    else method
        return out

    def _with_seen_validation(self, method):
        """Also score the fine-tuned model on the 'seen validation' pool reviews it was not
        trained on (they were pre-trained on); the accuracy goes into the log."""
        from course_lib.imdb_methods import predict_labels

        def wrapped(rows, y, seed):
            predictor = method(rows, y, seed)
            unseen_by_training = np.setdiff1d(self.seen_rows, rows)
            if not len(unseen_by_training):          # every labelled review: nothing to show
                return predictor
            accuracy = float(np.mean(
                predict_labels(predictor.model, self.windows["pool"][unseen_by_training])
                == self.splits.pool_labels[unseen_by_training]))
            self.log[-1]["seen_validation_accuracy"] = accuracy
            self.log[-1]["seen_validation_size"] = int(len(unseen_by_training))
            return predictor

        return wrapped

    def run(self, path: str | Path, methods: list[str] | None = None,
            budgets: list[str] | None = None, progress: bool = True) -> LabelEfficiency:
        """Run every (method, budget, seed) of the plan that the records file at ``path`` lacks,
        saving after each; returns all records. A file written for another plan or other
        pre-trained models is refused (``ValueError``): move it away to start afresh."""
        path = Path(path)
        key = fingerprint(self.plan, self.models)
        stored = load_records(path)
        if stored and stored["fingerprint"] != key:
            raise ValueError(f"{path} holds records of another plan or other pre-trained "
                             "models; move it away to start a new study")
        records = stored["records"] if stored else []
        self.log = stored["log"] if stored else []
        self.choices = stored.get("choices", {}) if stored else {}
        if not self.choices:
            self.choices = self.choose_encoder_settings(progress)
            save_records(path, key, self.plan, self.models, records, self.log, 0.0,
                         self.choices)
        done = {(r["method"], str(r["per_class"]), r["seed"]) for r in records}
        chosen = methods or self.plan["methods"]
        for budget_key in budgets or list(self.plan["budgets"]):
            budget = _budget(budget_key)
            all_methods = self.methods(budget_key)
            for seed in self.plan["budgets"][budget_key]:
                todo = {m: all_methods[m] for m in chosen
                        if (m, str(budget), seed) not in done}
                if not todo:
                    continue
                start = time.perf_counter()
                found = label_efficiency(todo, np.arange(len(self.splits.pool_labels)),
                                         self.splits.pool_labels,
                                         np.arange(len(self.splits.test_labels)),
                                         self.splits.test_labels, budgets=[budget],
                                         seeds=(seed,), progress=progress)
                records += found.records
                done |= {(m, str(budget), seed) for m in todo}
                save_records(path, key, self.plan, self.models, records, self.log,
                             time.perf_counter() - start, self.choices)
        return LabelEfficiency(records)

    def choose_encoder_settings(self, progress: bool = True) -> dict:
        """For the pre-trained and the from-scratch encoder separately: the setting of the plan's
        ``encoder_grid`` with the best mean validation accuracy when fine-tuned at the choice
        budget on the choice seeds (label subsets no reported number uses). The test reviews
        are not read. Returns {"pre-trained": setting, "scratch": setting, "trials": [...]}."""
        from course_lib.imdb_methods import encoder_method

        budget = _budget(self.plan["choice"]["budget"])
        fit = self.plan["fit"]
        trials, chosen = [], {}
        for arm, weights in (("pre-trained", self.encoder_weights), ("scratch", None)):
            grid = self.plan["encoder_grid"][arm]
            if len(grid) == 1:                                      # nothing to choose
                chosen[arm] = grid[0]
                continue
            scores = []
            for setting in grid:
                enc = {**self.plan["encoder"], **setting}
                log: list = []
                method = encoder_method(
                    self.config, weights, self.windows["pool"], self.windows["test"],
                    (self.windows["val"], self.splits.validation_labels), mode="lp-ft",
                    peak_lr=enc["peak_lr"], embedding=enc["embedding"], dropout=enc["dropout"],
                    settings=fit, log=log, feature_cache=self.feature_cache)
                start = time.perf_counter()
                for seed in self.plan["choice"]["seeds"]:
                    rows = sample_per_class(self.splits.pool_labels, budget, seed)
                    method(rows, self.splits.pool_labels[rows], seed)     # never scored on test
                accuracy = float(np.mean([entry["best_val_accuracy"] for entry in log]))
                trials.append({"arm": arm, **setting, "validation_accuracy": accuracy,
                               "seconds": round(time.perf_counter() - start, 1)})
                scores.append((accuracy, setting))
                if progress:
                    print(f"choice, {arm} encoder, {setting}: validation accuracy {accuracy:.3f}",
                          flush=True)
            chosen[arm] = max(scores, key=lambda item: item[0])[1]
        return {**chosen, "trials": trials}


class _Tagged(list):
    """A log that stamps each entry with the method's name and budget before keeping it."""

    def __init__(self, target: list, method: str, budget: str):
        super().__init__()
        self.target, self.method, self.budget = target, method, budget

    def append(self, entry: dict) -> None:
        self.target.append({"method": self.method, "budget": self.budget, **entry})


def load_records(path: str | Path) -> dict | None:
    """The stored study at ``path`` (None when there is none); ``ValueError`` if unreadable."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        stored["records"], stored["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a study records file ({type(error).__name__}); move it "
                         "away to start a new study") from None
    if stored.get("format") != STUDY_FORMAT:
        raise ValueError(f"{path} has study format {stored.get('format')!r}, this course "
                         f"writes {STUDY_FORMAT}")
    return stored


def save_records(path: Path, key: str, plan: dict, models: dict, records: list, log: list,
                 seconds: float, choices: dict | None = None) -> None:
    """Write the study atomically (a crash never leaves half a file)."""
    from course_lib.data.files import atomic_write
    from course_lib.environment import hardware

    previous = load_records(path) if path.exists() else None
    total = (previous or {}).get("seconds", 0.0) + seconds
    payload = {"format": STUDY_FORMAT, "fingerprint": key, "plan": plan, "models": models,
               "hardware": hardware(), "seconds": round(total, 1), "records": records,
               "log": log, "choices": choices or {}}
    text = json.dumps(payload, indent=1, sort_keys=True, default=_json_default).encode()
    atomic_write(path, lambda f: f.write(text))


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a study file")


def missing_runs(stored: dict) -> list[tuple[str, str, int]]:
    """The (method, budget key, seed) runs of ``stored["plan"]`` that its records lack: empty
    when the study is complete. The chapter says how much of the study its tables rest on."""
    done = {(r["method"], str(r["per_class"]), r["seed"]) for r in stored["records"]}
    return [(method, key, seed)
            for key, seeds in stored["plan"]["budgets"].items()
            for seed in seeds for method in stored["plan"]["methods"]
            if (method, str(_budget(key)), seed) not in done]


SHIPPED = Path(__file__).resolve().parent / "studies" / "imdb.json"


def default_path(fast: bool | None = None) -> Path:
    """Where ``course study imdb`` keeps its records: ``studies/imdb-<full|fast>.json`` in the
    course cache."""
    from course_lib.data.files import cache_dir

    fast = fast_mode() if fast is None else fast
    return cache_dir() / "studies" / f"imdb-{'fast' if fast else 'full'}.json"


def run_cli(out: str | None, methods: list[str] | None = None,
            budgets: list[str] | None = None) -> int:
    """``course study imdb``: run (or resume) the study and print its tables."""
    from course_lib.environment import import_keras

    import_keras()
    path = Path(out) if out else default_path()
    unknown = [m for m in methods or [] if m not in METHODS]
    if unknown:
        print(f"error: unknown method(s) {unknown}; methods: {list(METHODS)}")
        return 2
    study = ImdbStudy()
    wrong = [b for b in budgets or [] if b not in study.plan["budgets"]]
    if wrong:
        print(f"error: unknown budget(s) {wrong}; budgets: {list(study.plan['budgets'])}")
        return 2
    print(study.splits.summary())
    try:
        result = study.run(path, methods=methods, budgets=budgets)
    except ValueError as error:
        print(f"error: {error}")
        return 1
    print(result.table())
    print()
    print(result.gains_table("encoder from scratch"))
    print(f"records: {path}")
    return 0


def shipped_study(study: ImdbStudy, path: str | Path | None = None) -> tuple[LabelEfficiency,
                                                                              dict]:
    """The course's stored study (default: the shipped ``studies/imdb.json``) as
    ``(result, stored)``. Refused with a ``ValueError`` naming the command that redoes it when
    it was made for another plan than ``study``'s; when ``study`` loaded other pre-trained
    models than the records were made with (a model retrained into your cache), the records
    are still returned and ``stored["note"]`` says so."""
    path = Path(path) if path else SHIPPED
    stored = load_records(path)
    if stored is None:
        raise ValueError(f"no study records at {path}: run `course study imdb` (hours on a CPU)")
    if stored["plan"] != json.loads(json.dumps(study.plan)):
        raise ValueError(f"{path} was made for another plan than this chapter's: run "
                         "`course study imdb` to redo it")
    stored["note"] = ""
    if stored["fingerprint"] != fingerprint(study.plan, study.models):
        stored["note"] = ("note: these records were made with the course's shipped pre-trained "
                          "models; the ones loaded here differ (retrained into your cache?): "
                          "`course study imdb` measures yours")
    return LabelEfficiency(stored["records"]), stored


def contamination(result: LabelEfficiency, log: list[dict], budget: str,
                  method: str = "encoder, pre-trained + fine-tuned",
                  baseline: str = "encoder from scratch") -> dict:
    """The same paired comparison (``method`` minus ``baseline`` at ``budget`` labels per
    class) measured three ways: on label-pool reviews the models were not trained on but the
    pre-trained encoder *was pre-trained on* ("seen validation"), on the validation reviews
    nothing was pre-trained on (where early stopping chose each model), and on the test
    reviews. Returns {"seen validation": Comparison, "validation": ..., "test": ...}."""
    from course_lib.experiments import compare

    def scores(name, key):
        return {e["seed"]: e[key] for e in log
                if e.get("method") == name and e.get("budget") == budget and key in e}

    out = {}
    for label, key in (("seen validation", "seen_validation_accuracy"),
                       ("validation", "best_val_accuracy")):
        out[label] = compare(scores(method, key), scores(baseline, key), method=method,
                             baseline=baseline)
    out["test"] = result.compare(method, baseline, _budget(budget))
    return out
