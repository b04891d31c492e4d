"""audit.io.model: every checkpoint form, safe loading (a pickle payload never runs), --arch resolution and
model_input_check."""

from __future__ import annotations

import hashlib
import importlib.util
import pathlib
import pickle
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from audit.errors import DataError, ModelLoadError, UsageError
from audit.io import LoadedModel, load_model, model_input_check
from audit.io.model import model_dtype

N_FEATURES = 5


def _mlp(seed: int = 0, n_out: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(N_FEATURES, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, n_out))


def _x() -> torch.Tensor:
    return torch.linspace(-2, 2, 4 * N_FEATURES).reshape(4, N_FEATURES)


def _arch_file(tmp_path: Path) -> Path:
    """A module with network builders, written where --arch can import it."""
    path = tmp_path / "toyarch_io.py"
    path.write_text(
        textwrap.dedent(
            f"""
            import torch
            from torch import nn

            def make_mlp():
                return nn.Sequential(nn.Linear({N_FEATURES}, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))

            def make_head(num_classes=10):
                return nn.Sequential(nn.Linear({N_FEATURES}, 8), nn.ReLU(), nn.Linear(8, num_classes))

            def make_list():
                return [1, 2]

            NOT_CALLABLE = 3

            class Factory:
                @staticmethod
                def build():
                    return make_mlp()

            def make_double():
                return make_mlp().double()
            """
        )
    )
    return path


@pytest.fixture
def arch_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    _arch_file(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "toyarch_io", raising=False)
    return "toyarch_io"


def _quiet_jit_save(module: nn.Module, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(module), str(path))


def _export(module: nn.Module, path: Path, dynamic: bool = True) -> None:
    shapes = {"input": {0: torch.export.Dim("batch")}} if dynamic else None
    torch.export.save(torch.export.export(module, (torch.zeros(3, N_FEATURES),), dynamic_shapes=shapes), str(path))


# ---------------------------------------------------------------------------------------------------- forms


def test_torchscript_loads_in_eval_mode_and_matches(tmp_path: Path) -> None:
    net = _mlp().train()
    path = tmp_path / "model.bin"  # the name says nothing: the content decides
    _quiet_jit_save(net, path)
    loaded = load_model(path)
    assert isinstance(loaded, LoadedModel)
    assert loaded.form == "torchscript" and loaded.arch is None and loaded.path == str(path)
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not loaded.module.training
    torch.testing.assert_close(loaded.module(_x()), net.eval()(_x()))  # dropout off


def test_export_loads_and_passes_input_gradients(tmp_path: Path) -> None:
    net = _mlp().eval()
    path = tmp_path / "model.pt2"
    _export(net, path)
    loaded = load_model(path)
    assert loaded.form == "export"
    assert all(not m.training for m in loaded.module.modules())
    x = _x().requires_grad_(True)
    out = loaded.module(x)
    torch.testing.assert_close(out, net(_x()))
    (grad,) = torch.autograd.grad(out[:, 0].sum(), x)
    xr = _x().requires_grad_(True)
    (ref,) = torch.autograd.grad(net(xr)[:, 0].sum(), xr)
    torch.testing.assert_close(grad, ref)


class _NoGrad(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(N_FEATURES, 2)

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - name used by dynamic_shapes
        with torch.no_grad():
            return self.lin(input)


class _Detach(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(N_FEATURES, 2)

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002
        return self.lin(input.detach())  # weights still require grad; the input gets none


@pytest.mark.parametrize("module_cls", [_NoGrad, _Detach])
def test_export_that_cannot_be_differentiated_is_refused(tmp_path: Path, module_cls: type[nn.Module]) -> None:
    path = tmp_path / "ng.pt2"
    _export(module_cls().eval(), path)
    with pytest.raises(ModelLoadError) as err:
        load_model(path)
    msg = str(err.value)
    assert "'ng.pt2' is a torch.export program that cannot be differentiated" in msg
    assert "TorchScript" in msg and "state_dict" in msg


def test_export_with_fixed_batch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fixed.pt2"
    _export(_mlp().eval(), path, dynamic=False)
    with pytest.raises(ModelLoadError, match=r"fixed batch size of 3 .*Dim\('batch'\)"):
        load_model(path)


def test_export_in_training_mode_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "train.pt2"
    _export(_mlp().train(), path)
    with pytest.raises(ModelLoadError, match=r"exported in training mode .*call model.eval\(\)"):
        load_model(path)


def test_state_dict_with_arch(tmp_path: Path, arch_module: str) -> None:
    net = _mlp(seed=3)
    path = tmp_path / "w.pt"
    torch.save(net.state_dict(), path)
    loaded = load_model(path, arch=f"{arch_module}:make_mlp")
    assert loaded.form == "state_dict" and loaded.arch == f"{arch_module}:make_mlp"
    assert not loaded.module.training
    torch.testing.assert_close(loaded.module(_x()), net.eval()(_x()))


@pytest.mark.parametrize("key", ["state_dict", "model_state_dict", "model"])
def test_state_dict_inside_a_checkpoint_dict(tmp_path: Path, arch_module: str, key: str) -> None:
    net = _mlp(seed=4)
    path = tmp_path / "ckpt.pt"
    torch.save({key: net.state_dict(), "epoch": 7, "optimizer": {"lr": 0.1}}, path)
    loaded = load_model(path, arch=f"{arch_module}:Factory.build")
    torch.testing.assert_close(loaded.module(_x()), net.eval()(_x()))


def test_arch_as_file_path_and_dataparallel_prefix(tmp_path: Path) -> None:
    arch_path = _arch_file(tmp_path)
    net = _mlp(seed=5)
    path = tmp_path / "dp.pt"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)
    loaded = load_model(path, arch=f"{arch_path}:make_mlp")
    torch.testing.assert_close(loaded.module(_x()), net.eval()(_x()))


def test_num_classes_retry_for_a_different_head(tmp_path: Path, arch_module: str) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(N_FEATURES, 8), nn.ReLU(), nn.Linear(8, 4))  # make_head defaults to 10 outputs
    path = tmp_path / "head.pt"
    torch.save(net.state_dict(), path)
    loaded = load_model(path, arch=f"{arch_module}:make_head")
    assert model_input_check(loaded.module, N_FEATURES) == 4
    torch.testing.assert_close(loaded.module(_x()), net(_x()))


def test_torchvision_builder_gets_no_weights_and_inferred_num_classes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torchvision = pytest.importorskip("torchvision")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))  # a download would land here
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None, num_classes=3).eval()
    path = tmp_path / "r18.pt"
    torch.save(net.state_dict(), path)
    loaded = load_model(path, arch="torchvision.models:resnet18")
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(loaded.module(x), net(x))
    assert not (tmp_path / "hub").exists()


def test_pickled_module_needs_trust(tmp_path: Path) -> None:
    net = _mlp()
    path = tmp_path / "ckpt.pt"
    torch.save(net, path)
    with pytest.raises(ModelLoadError) as err:
        load_model(path)
    msg = str(err.value)
    assert msg.startswith("'ckpt.pt' is a pickled Python object (a full nn.Module")
    assert "torch.nn.modules.container.Sequential" in msg
    assert "loading it can run arbitrary code: pass --trust-model only if you trust its source" in msg
    assert "re-save it as TorchScript / a state_dict" in msg
    loaded = load_model(path, trust_model=True)
    assert loaded.form == "pickle" and not loaded.module.training
    torch.testing.assert_close(loaded.module(_x()), net.eval()(_x()))
    # a training checkpoint that pickles the whole module under "model"
    torch.save({"model": net, "epoch": 3}, path)
    with pytest.raises(ModelLoadError, match="is a pickled Python object"):
        load_model(path)
    assert load_model(path, trust_model=True).form == "pickle"


class _Payload:
    """Unpickling this opens (creates) the marker file: the simplest observable code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pickle_payload_never_runs_without_trust(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "PAYLOAD_RAN"
    path = tmp_path / "evil.pt"
    if writer == "torch.save":
        torch.save({"model": _Payload(marker)}, path)
    else:
        with open(path, "wb") as fh:
            pickle.dump(_Payload(marker), fh)
    with pytest.raises(ModelLoadError, match="is a pickled Python object .* pass --trust-model only if"):
        load_model(path)
    assert not marker.exists()
    # the payload is real: trusting the file runs it (and the result is not a model)
    with pytest.raises(ModelLoadError):
        load_model(path, trust_model=True)
    assert marker.exists()


# --------------------------------------------------------------------------------------------- bad files


def test_missing_empty_directory_random_and_truncated(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"model file '.*nope\.pt' does not exist; check the path"):
        load_model(tmp_path / "nope.pt")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(ModelLoadError, match=r"'.*empty\.pt' is empty \(0 bytes\)"):
        load_model(empty)
    with pytest.raises(ModelLoadError, match="is a directory; pass the checkpoint file itself"):
        load_model(tmp_path)
    rand = tmp_path / "rand.pt"
    rand.write_bytes(bytes(range(7, 200)))
    with pytest.raises(ModelLoadError, match=r"'rand.pt' is not a PyTorch checkpoint \(it starts with bytes 07 08"):
        load_model(rand)
    good = tmp_path / "good.pt"
    torch.save(_mlp().state_dict(), good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:500])
    with pytest.raises(ModelLoadError, match="'cut.pt' is a truncated or corrupt zip archive"):
        load_model(cut)
    legacy = tmp_path / "legacy.pt"
    torch.save(_mlp().state_dict(), legacy, _use_new_zipfile_serialization=False)
    cut_legacy = tmp_path / "cut_legacy.pt"
    cut_legacy.write_bytes(legacy.read_bytes()[:300])
    with pytest.raises(ModelLoadError, match="'cut_legacy.pt' is corrupt or not a PyTorch checkpoint"):
        load_model(cut_legacy)


def test_not_a_module(tmp_path: Path) -> None:
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(2), torch.ones(2)], path)
    with pytest.raises(ModelLoadError, match=r"'list.pt' holds a list of 2 items, not an nn.Module or a state_dict"):
        load_model(path)
    path = tmp_path / "meta.pt"
    torch.save({"epoch": 3, "lr": 0.1}, path)
    with pytest.raises(ModelLoadError, match="holds a dict with keys epoch, lr"):
        load_model(path)


# --------------------------------------------------------------------------------------------------- --arch


def test_state_dict_without_arch(tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    torch.save(_mlp().state_dict(), path)
    with pytest.raises(ModelLoadError) as err:
        load_model(path)
    assert str(err.value) == (
        "'w.pt' is a state_dict (weights only); pass --arch module:callable that builds the network, "
        "e.g. --arch mypkg.models:make_mlp"
    )


@pytest.mark.parametrize("arch", ["toyarch_io", "toyarch_io:", ":make_mlp", "toy-arch:make", "a:b c"])
def test_malformed_arch_is_a_usage_error(tmp_path: Path, arch: str) -> None:
    path = tmp_path / "w.pt"
    torch.save(_mlp().state_dict(), path)
    with pytest.raises(UsageError, match="must look like module:callable, e.g. --arch"):
        load_model(path, arch=arch)


def test_arch_resolution_errors(tmp_path: Path, arch_module: str) -> None:
    path = tmp_path / "w.pt"
    torch.save(_mlp().state_dict(), path)
    with pytest.raises(UsageError, match="no module named 'no_such_mod_xyz'; install it, or run audit from the folder"):
        load_model(path, arch="no_such_mod_xyz:make")
    with pytest.raises(UsageError, match=r"'toyarch_io' has no attribute 'make_mpl'; did you mean 'make_mlp'\?"):
        load_model(path, arch=f"{arch_module}:make_mpl")
    with pytest.raises(UsageError, match="names a int, which is not callable"):
        load_model(path, arch=f"{arch_module}:NOT_CALLABLE")
    with pytest.raises(ModelLoadError, match=r"make_list\(\) returned a list, not an nn.Module"):
        load_model(path, arch=f"{arch_module}:make_list")


def test_arch_key_mismatch_lists_up_to_three(tmp_path: Path, arch_module: str) -> None:
    sd = {f"extra{i}.weight": torch.zeros(2, 2) for i in range(5)}
    path = tmp_path / "w.pt"
    torch.save(sd, path)
    with pytest.raises(ModelLoadError) as err:
        load_model(path, arch=f"{arch_module}:make_mlp")
    msg = str(err.value)
    assert msg.startswith("the state_dict in 'w.pt' does not fit the network built by --arch toyarch_io:make_mlp")
    assert "missing keys: 0.weight, 0.bias, 3.weight, ... (4 in all)" in msg
    assert "unexpected keys: extra0.weight, extra1.weight, extra2.weight, ... (5 in all)" in msg
    assert "check that --arch builds the architecture" in msg


def test_arch_shape_mismatch(tmp_path: Path, arch_module: str) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(N_FEATURES + 1, 8), nn.ReLU(), nn.Dropout(), nn.Linear(8, 3))
    path = tmp_path / "w.pt"
    torch.save(net.state_dict(), path)
    with pytest.raises(ModelLoadError, match=r"shape mismatches: 0.weight file \(8, 6\) vs network \(8, 5\)"):
        load_model(path, arch=f"{arch_module}:make_mlp")


def test_bad_device(tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    torch.save(_mlp().state_dict(), path)
    with pytest.raises(UsageError, match="unknown --device 'gpu0'"):
        load_model(path, device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA device is available; use --device cpu"):
            load_model(path, device="cuda")


# -------------------------------------------------------------------------------------- model_input_check


class _Vector(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=1)  # (rows,)


class _Cube(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(-1).expand(-1, -1, 2)  # (rows, features, 2)


class _Pair(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x


class _Broken(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise KeyError("vocabulary")


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (nn.Linear(N_FEATURES, 3), 3),
        (nn.Linear(N_FEATURES, 1), 1),
        (_Vector(), 1),
        (nn.Linear(N_FEATURES, 2).double(), 2),  # the dummy batch follows the parameters' dtype
    ],
)
def test_model_input_check_counts_outputs(module: nn.Module, expected: int) -> None:
    assert model_input_check(module, N_FEATURES) == expected


def test_model_input_check_wrong_feature_count_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        model_input_check(nn.Linear(20, 2), 7)
    msg = str(err.value)
    # the width is read from the first linear layer (and confirmed by a dummy batch)
    assert msg.startswith("the model takes 20 inputs and the file has 7 feature columns (it raised: mat1 and mat2")
    assert msg.endswith("check --target-col/--drop so the data has the columns the model was trained on")
    path = tmp_path / "ts.pt"
    _quiet_jit_save(nn.Sequential(nn.Linear(20, 2)), path)
    with pytest.raises(DataError, match="takes 20 inputs and the file has 7 feature columns .*mat1 and mat2") as err:
        model_input_check(load_model(path).module, 7)
    assert "Traceback" not in str(err.value) and "\n" not in str(err.value)


def test_model_input_check_bad_outputs_and_failures() -> None:
    with pytest.raises(ModelLoadError, match=r"returns shape \(2, 5, 2\) for a batch of 2 rows"):
        model_input_check(_Cube(), N_FEATURES)
    with pytest.raises(ModelLoadError, match="returns a tuple, not a tensor"):
        model_input_check(_Pair(), N_FEATURES)
    with pytest.raises(ModelLoadError, match="failed on a batch of 2 rows x 5 zero features"):
        model_input_check(_Broken(), N_FEATURES)
    with pytest.raises(UsageError, match="n_features must be a positive integer"):
        model_input_check(nn.Linear(2, 1), 0)


# ------------------------------------------------------------------------------------ models as people have them

_MODS_SOURCE = f"""
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear({N_FEATURES}, 6), nn.Tanh(), nn.Linear(6, 2))

    def forward(self, x):
        return self.body(x)
"""


def _one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(err.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


@pytest.fixture
def saved_mods_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, nn.Module]:
    """``torch.save(Net(), path)`` for a class defined in ``<tmp>/work/mods.py``, then ``mods`` un-imported and
    nowhere on sys.path: as when a training script's folder is not where audit runs from, unless it chdirs there."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "mods.py").write_text(_MODS_SOURCE)
    spec = importlib.util.spec_from_file_location("mods", work / "mods.py")
    assert spec is not None and spec.loader is not None
    mods = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "mods", mods)
    spec.loader.exec_module(mods)
    torch.manual_seed(4)
    net = mods.Net()
    path = work / "model.pt"
    torch.save(net, path)
    monkeypatch.delitem(sys.modules, "mods")  # restored (absent) at teardown as well
    # neither the folder nor '' (the working directory, as `python -c` has it) may already find it
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(work))])
    return path, net


def test_pickled_module_whose_class_is_in_the_working_directory(
    saved_mods_model: tuple[Path, nn.Module], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, net = saved_mods_model
    monkeypatch.chdir(path.parent)
    path_before = list(sys.path)
    loaded = load_model("model.pt", trust_model=True)
    assert loaded.form == "pickle" and type(loaded.module).__name__ == "Net"
    assert type(loaded.module).__module__ == "mods"
    torch.testing.assert_close(loaded.module(_x()), net(_x()))
    assert sys.path == path_before  # the working directory was on the path only while unpickling
    sys.modules.pop("mods", None)
    # still never without trust
    with pytest.raises(ModelLoadError, match=r"is a pickled Python object .*it refers to mods\.Net"):
        load_model("model.pt")


def test_pickled_module_whose_class_cannot_be_found_says_where_to_run(
    saved_mods_model: tuple[Path, nn.Module], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = saved_mods_model
    monkeypatch.chdir(path.parent.parent)  # not the folder that holds mods.py
    with pytest.raises(ModelLoadError) as err:
        load_model(path, trust_model=True)
    assert _one_line(err) == (
        "'model.pt' could not be unpickled even with --trust-model: its classes are defined in module 'mods', "
        "which cannot be imported; run audit from the folder that holds mods.py, or install it"
    )


def _lightning_checkpoint(net: nn.Module, prefix: str = "model.", **extra: object) -> dict[str, object]:
    """What ``Trainer.save_checkpoint`` writes for a LightningModule holding ``net`` as ``self.model``."""
    return {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": {prefix + k: v for k, v in net.state_dict().items()},
        "loops": {"fit_loop": {"epoch_progress": {"total": {"ready": 4, "completed": 3}}}},
        "callbacks": {"ModelCheckpoint{'monitor': 'val_loss'}": {"best_model_score": torch.tensor(0.25)}},
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.01, "params": [0, 1, 2, 3]}]}],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": {"hidden": 8, "lr": 0.01},
        **extra,
    }


def test_lightning_checkpoint_with_model_prefix(tmp_path: Path, arch_module: str) -> None:
    net = _mlp()
    path = tmp_path / "epoch=3-step=120.ckpt"
    torch.save(_lightning_checkpoint(net), path)
    loaded = load_model(path, arch=f"{arch_module}:make_mlp")
    assert loaded.form == "state_dict" and loaded.arch == f"{arch_module}:make_mlp"
    torch.testing.assert_close(loaded.module(_x()), net.eval()(_x()))
    assert len(loaded.notes) == 1 and "started with 'model.'" in loaded.notes[0]
    assert "LightningModule" in loaded.notes[0]
    with pytest.raises(ModelLoadError) as err:
        load_model(path)
    assert _one_line(err).startswith(
        "'epoch=3-step=120.ckpt' is a PyTorch Lightning checkpoint (weights only, under 'state_dict'); pass --arch"
    )


@pytest.mark.parametrize("prefix", ["model.", "model._orig_mod.", "module.model.", "_orig_mod.", "net.", "module."])
def test_wrapper_prefixes_are_removed_when_the_keys_then_match(
    tmp_path: Path, arch_module: str, prefix: str
) -> None:
    net = _mlp()
    path = tmp_path / "w.pt"
    torch.save({"state_dict": {prefix + k: v for k, v in net.state_dict().items()}}, path)
    loaded = load_model(path, arch=f"{arch_module}:make_mlp")
    torch.testing.assert_close(loaded.module(_x()), net.eval()(_x()))
    assert f"started with '{prefix}'" in loaded.notes[0]
    assert set(loaded.module.state_dict()) == set(net.state_dict())
    if prefix != "module.":  # today only nn.DataParallel's prefix was removed
        return
    # a prefix that does not make the keys match is reported, not guessed around
    torch.save({"model." + k: v for k, v in _mlp(n_out=4).state_dict().items()}, path)
    with pytest.raises(ModelLoadError, match=r"shape mismatches: 3\.weight file \(4, 8\) vs network \(3, 8\)"):
        load_model(path, arch=f"{arch_module}:make_mlp")


def test_lightning_checkpoint_the_safe_loader_refuses(tmp_path: Path, arch_module: str) -> None:
    path = tmp_path / "last.ckpt"
    torch.save(_lightning_checkpoint(_mlp(), hyper_parameters={"data_dir": pathlib.PurePosixPath("/data")}), path)
    with pytest.raises(ModelLoadError) as err:
        load_model(path, arch=f"{arch_module}:make_mlp")
    assert _one_line(err) == (
        "'last.ckpt' is a PyTorch Lightning checkpoint whose extra entries (hyperparameters, callbacks) hold "
        "pathlib.PurePosixPath, which the safe loader refuses; pass --trust-model only if you trust its source, or "
        "save the weights alone with torch.save(module.state_dict(), path)"
    )
    loaded = load_model(path, arch=f"{arch_module}:make_mlp", trust_model=True)  # the person vouches for it
    assert loaded.form == "state_dict"


def _train_mode_net() -> nn.Module:
    torch.manual_seed(2)
    net = nn.Sequential(
        nn.Linear(N_FEATURES, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 8), nn.BatchNorm1d(8),
        nn.Linear(8, 2),
    )
    net.train()
    with torch.no_grad():  # running statistics that differ from the batch's own
        net(torch.randn(64, N_FEATURES) * 3 + 1)
    return net


_TRAIN_NOTE = (
    "the model had 2 BatchNorm / 1 Dropout layers in train mode; audit switched them to eval mode (model.eval()) so "
    "rows do not interact and outputs are deterministic"
)


@pytest.mark.parametrize("form", ["pickle", "torchscript"])
def test_train_mode_layers_are_switched_to_eval_with_a_note(tmp_path: Path, form: str) -> None:
    net = _train_mode_net()
    path = tmp_path / "m.pt"
    if form == "pickle":
        torch.save(net, path)
    else:
        _quiet_jit_save(net, path)
    loaded = load_model(path, trust_model=True)
    assert loaded.form == form and loaded.notes == (_TRAIN_NOTE,)
    assert not any(m.training for m in loaded.module.modules())
    x = torch.randn(6, N_FEATURES)
    expected = net.eval()(x)
    torch.testing.assert_close(loaded.module(x), expected)
    torch.testing.assert_close(loaded.module(x[:1]), expected[:1])  # rows do not interact
    # saved in eval mode: nothing to say
    if form == "pickle":
        torch.save(net.eval(), path)
    else:
        _quiet_jit_save(net.eval(), path)
    assert load_model(path, trust_model=True).notes == ()


def test_train_mode_note_counts_and_grammar(tmp_path: Path) -> None:
    path = tmp_path / "d.pt"
    torch.save(nn.Sequential(nn.Linear(N_FEATURES, 2), nn.Dropout(0.1)).train(), path)
    assert load_model(path, trust_model=True).notes == (
        "the model had 1 Dropout layer in train mode; audit switched it to eval mode (model.eval()) so rows do not "
        "interact and outputs are deterministic",
    )


def test_float64_models_are_probed_in_their_own_dtype(tmp_path: Path, arch_module: str) -> None:
    net = _mlp().double().eval()
    x = _x().double()
    ts = tmp_path / "ts64.pt"
    _quiet_jit_save(net, ts)
    sd = tmp_path / "sd64.pt"
    torch.save(net.state_dict(), sd)
    for loaded in (load_model(ts), load_model(sd, arch=f"{arch_module}:make_double")):
        assert model_dtype(loaded.module) == torch.float64
        assert model_input_check(loaded.module, N_FEATURES) == 3
        torch.testing.assert_close(loaded.module(x), net(x))
    assert model_dtype(nn.Linear(2, 1)) == torch.float32
    assert model_dtype(nn.Linear(2, 1).half()) == torch.float16
    assert model_dtype(nn.ReLU()) == torch.float32  # no floating parameters


def test_arch_network_starts_in_train_mode_without_a_note(tmp_path: Path, arch_module: str) -> None:
    path = tmp_path / "sd.pt"
    torch.save(_mlp().state_dict(), path)
    loaded = load_model(path, arch=f"{arch_module}:make_mlp")
    assert loaded.notes == () and not loaded.module.training  # nn.Module's default train mode is no news
