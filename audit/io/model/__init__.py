"""Load a model checkpoint safely, whatever form it was saved in.

Forms are told apart by the file's content, never by its name:

- ``"torchscript"``: a ``torch.jit.save`` archive, loaded with ``torch.jit.load``.
- ``"export"``: a ``torch.export.save`` program (``.pt2`` zip), loaded with ``torch.export.load(...).module()``
  after checking that it is in eval mode, takes a dynamic batch and passes gradients back to its inputs
  (Integrated Gradients needs input gradients).
- ``"state_dict"``: weights only (a dict of tensors, or a checkpoint dict holding one under ``state_dict``,
  ``model_state_dict`` or ``model``, such as a PyTorch Lightning ``.ckpt``), built with ``--arch module:callable``
  and loaded with ``strict=True``. A prefix shared by every key (``module.`` from ``nn.DataParallel``, ``model.``
  from a LightningModule attribute, ``_orig_mod.`` from ``torch.compile``) is removed when the keys then match.
- ``"pickle"``: a pickled full ``nn.Module``. Loading one runs code from the file, so it is refused unless the
  caller passes ``trust_model=True``; its classes are then imported as ``python -m`` would, with the working
  directory on the path. The first read of any ``torch.save`` file is always ``torch.load(weights_only=True)``,
  which never executes a pickle payload.

Every module is returned in eval mode; when a pickled or TorchScript model arrived with BatchNorm or Dropout
layers in train mode, :attr:`LoadedModel.notes` says that they were switched.

The package is split by concern (its public surface is ``__all__`` below, re-exported from these modules):

- :mod:`~audit.io.model.loader`: :func:`load_model`, :class:`LoadedModel`, :data:`FORMS`; path and device checks.
- :mod:`~audit.io.model.safe_load`: form sniffing, the ``weights_only`` first read, pickles and state_dict lookup.
- :mod:`~audit.io.model.arch`: ``--arch`` resolution, state_dict matching and key-prefix stripping.
- :mod:`~audit.io.model.export`: TorchScript and ``torch.export`` specifics.
- :mod:`~audit.io.model.inputs`: :func:`model_dtype` and :func:`model_input_check`.
- :mod:`~audit.io.model.messages`: one-line exception reasons and the train-mode note.
"""

from __future__ import annotations

from audit.io.model.inputs import accepts_width, model_dtype, model_input_check, model_input_width
from audit.io.model.loader import FORMS, LoadedModel, load_model

__all__ = [
    "FORMS", "LoadedModel", "load_model", "model_dtype", "model_input_check", "model_input_width", "accepts_width",
]
