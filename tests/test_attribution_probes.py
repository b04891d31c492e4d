"""The row-independence probe on models whose inputs hold category ids (an nn.Embedding on a column)."""

from __future__ import annotations

import torch

from audit.attribution.native import rows_are_independent


class _CategoryModel(torch.nn.Module):
    """Column 0 is a category id in 0..4 looked up in an embedding; the other columns are numbers."""

    def __init__(self, batchnorm: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(5, 4)
        self.norm = torch.nn.BatchNorm1d(7) if batchnorm else torch.nn.Identity()
        self.lin = torch.nn.Linear(7, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(self.norm(torch.cat([self.emb(x[:, 0].long()), x[:, 1:]], dim=1)))


def _rows() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    cat = torch.randint(0, 5, (16, 1), generator=g).float()
    return torch.cat([cat, torch.randn(16, 3, generator=g)], dim=1)  # (16, 4)


def test_category_ids_stay_in_range_so_an_independent_model_is_recognised():
    # before: the probe scaled every column with noise, the ids left 0..4, the embedding raised IndexError and the
    # model was taken for one that couples rows (then attributed on the slow exact path)
    assert rows_are_independent(_CategoryModel().eval(), _rows())


def test_a_model_that_couples_rows_is_still_caught_with_category_columns():
    assert not rows_are_independent(_CategoryModel(batchnorm=True).train(), _rows())
