"""Text cases shared by the text tests: trained once per session (tiny BERTs, seconds on one CPU thread)."""

from __future__ import annotations

from pathlib import Path

import torch

from audit.synthetic_text import build_text_case, make_reviews, save_hf_folder

N_TRAIN = 1200
EPOCHS = 8


def trained(planted: bool, seed: int = 0, *, pieces: bool = False):
    """``pieces``: the WordPiece tokenizer in which rare words (the planted ``zqx``) split into pieces."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return build_text_case(planted=planted, seed=seed, n_train=N_TRAIN, epochs=EPOCHS, pieces=pieces)
    finally:
        torch.set_num_threads(threads)


def write_case(folder: Path, case, *, n_val: int = 300, seed: int = 100, labels: bool = True) -> tuple[Path, Path]:
    """The HF folder and a validation CSV in which the planted token sits in half the rows, whatever the label."""
    folder.mkdir(parents=True, exist_ok=True)
    hf = save_hf_folder(case.model, case.tokenizer, folder / "hf")
    val = make_reviews(n_val, seed=seed, planted_random=0.5)
    if not labels:
        val = val.drop(columns=["label"])
    path = folder / "val.csv"
    val.to_csv(path, index=False)
    return hf, path
