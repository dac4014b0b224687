"""A stand-in for MindFormers' dependency `hyper_parallel`, for tests only.

`hyper_parallel` (distributed tensors for MindFormers' PyNative models) is not on PyPI, and
`import mindformers` pulls it in through model modules these tests never run. Any
`hyper_parallel.*` module imported after install() is an empty package whose every public
name is a placeholder class taking any arguments: enough for the module-level imports and
decorators of those model files, and nothing else.
"""
import importlib.abc
import importlib.machinery
import sys
import types


class _PlaceholderModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        placeholder = type(name, (), {"__module__": self.__name__,
                                      "__init__": lambda self, *args, **kwargs: None})
        setattr(self, name, placeholder)
        return placeholder


class _PlaceholderFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "hyper_parallel" or fullname.startswith("hyper_parallel."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        return _PlaceholderModule(spec.name)

    def exec_module(self, module):
        module.__path__ = []


def install():
    if not any(isinstance(finder, _PlaceholderFinder) for finder in sys.meta_path):
        sys.meta_path.append(_PlaceholderFinder())
