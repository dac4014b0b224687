"""FusedAdamW in MindFormers' optimizer registry.

With this module imported (``import fused_adamw`` does it), a MindFormers YAML can say

    optimizer:
      type: FusedAdamW
      betas: [0.9, 0.95]
      eps: 1.e-8
      weight_decay: 0.1

and ``mindformers.core.optim.build_optim`` builds FusedAdamW with the trainer's parameter
groups and learning-rate schedule; ``runner_wrapper: {type: FusedTrainOneStepCell, ...}``
with MFTrainOneStepCell's keys builds the fused training step through ``build_wrapper``. ``register(replace_adamw=True)`` also makes
``type: AdamW`` build FusedAdamW (MindFormers' default, non-fused AdamW, which FusedAdamW
reproduces); ``register()`` undoes that.

Importing MindFormers takes seconds and fails where its dependency ``hyper_parallel`` is
missing, so this module never imports it by itself: it registers at once when MindFormers'
optimizers are already imported, and otherwise as soon as they are.

For MindFormers' ``run_mindformer.py``, which never imports fused_adamw, YAML
``auto_register`` loads this file: ``auto_register: mindformers.FusedAdamW`` (or
``mindformers.AdamW`` to replace AdamW) with ``REGISTER_PATH`` set to the directory of the
installed fused_adamw package (docs/mindformers.md). MindFormers copies the file and imports
the copy on its own, hence absolute imports only.
"""
import importlib.abc
import importlib.util
import sys

from fused_adamw.optimizer import FusedAdamW
from fused_adamw.train_step import FusedTrainOneStepCell

__all__ = ["AdamW", "FusedAdamW", "FusedTrainOneStepCell", "register"]

# The MindFormers module whose import registers its optimizers (AdamW among them).
_OPTIM_MODULE = "mindformers.core.optim"


class AdamW:
    """MindFormers' ``AdamW`` registry entry, building FusedAdamW instead.

    ``build_optim`` resolves ``type: AdamW`` through ``get_actual_adamw_cls(use_fused)``.
    FusedAdamW reproduces the ``use_fused=False`` path (MindFormers' ``BasicAdamW``);
    ``use_fused=True`` asks for MindFormers' Ascend kernel, whose semantics differ (its
    learning rate runs one step behind), so that request still goes to MindFormers.
    """

    def __new__(cls, params, learning_rate=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                use_fused=False, amsgrad=False, maximize=False, swap=False):
        if use_fused:
            return _mindformers_adamw()(params, learning_rate=learning_rate, betas=betas, eps=eps,
                                        weight_decay=weight_decay, use_fused=True, amsgrad=amsgrad,
                                        maximize=maximize, swap=swap)
        return FusedAdamW(params, learning_rate=learning_rate, betas=betas, eps=eps,
                          weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize, swap=swap)

    @staticmethod
    def get_actual_adamw_cls(use_fused):
        if use_fused:
            return _mindformers_adamw().get_actual_adamw_cls(True)
        return FusedAdamW


def _mindformers_adamw():
    """MindFormers' own AdamW entry (the module attribute stays when the registry entry is replaced)."""
    from mindformers.core.optim import AdamW as mindformers_adamw
    return mindformers_adamw


def register(replace_adamw=False):
    """Registers FusedAdamW in MindFormers' optimizer registry (imports MindFormers).

    Args:
        replace_adamw (bool): True makes ``type: AdamW`` build FusedAdamW as well; False
            gives ``AdamW`` back to MindFormers' own class.
    """
    from mindformers.tools.register import MindFormerModuleType, MindFormerRegister
    kind = MindFormerModuleType.OPTIMIZER
    _register_fused_adamw()
    if replace_adamw:
        MindFormerRegister.register_cls(AdamW, module_type=kind)
    elif is_adamw_replaced():
        MindFormerRegister.register_cls(_mindformers_adamw(), module_type=kind)


def _register_fused_adamw():
    """Adds ``type: FusedAdamW`` (optimizer) and ``runner_wrapper: {type: FusedTrainOneStepCell}``
    (wrapper) and leaves ``AdamW`` as it is (what importing this module does)."""
    from mindformers.tools.register import MindFormerModuleType, MindFormerRegister
    MindFormerRegister.register_cls(FusedAdamW, module_type=MindFormerModuleType.OPTIMIZER)
    MindFormerRegister.register_cls(FusedTrainOneStepCell, module_type=MindFormerModuleType.WRAPPER)


def is_adamw_replaced():
    """Whether MindFormers' ``type: AdamW`` currently builds FusedAdamW."""
    from mindformers.tools.register import MindFormerModuleType, MindFormerRegister
    entry = MindFormerRegister.get_cls(MindFormerModuleType.OPTIMIZER, "AdamW")
    # By name, not identity: auto_register imports a copy of this file, with its own class.
    return entry.__name__ == "AdamW" and entry.__module__ != _OPTIM_MODULE


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Registers FusedAdamW right after MindFormers' optimizer module has been executed.

    It stays on ``sys.meta_path`` until that has happened: an import of MindFormers that fails
    (a missing dependency, installed afterwards) is retried with the hook still in place."""

    _looking = False  # set while we ask the other finders, who must not find us again

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _OPTIM_MODULE or self._looking:
            return None
        self._looking = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._looking = False
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            execute = spec.loader.exec_module

            def execute_then_register(module):
                execute(module)  # raises if the import fails: then we stay for the next attempt
                _register_fused_adamw()
                if self in sys.meta_path:
                    sys.meta_path.remove(self)

            spec.loader.exec_module = execute_then_register
        return spec


def _register_when_mindformers_loads():
    if _OPTIM_MODULE in sys.modules:
        _register_fused_adamw()
    elif importlib.util.find_spec("mindformers") is not None and \
            not any(isinstance(f, _RegisterAfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())


_register_when_mindformers_loads()
