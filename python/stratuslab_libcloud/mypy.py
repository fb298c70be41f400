"""mypy plugin: ``libcloud.compute.providers.get_driver("stratuslab")`` is typed as
``type[StratusLabNodeDriver]``.

libcloud types ``get_driver`` as returning ``type[NodeDriver]``, whose constructor (libcloud's
``BaseDriver.__init__``) requires ``key``: without this plugin, the README's
``get_driver("stratuslab")(ex_config_file=...)`` fails ``mypy --strict`` with "Missing
positional argument "key"", although this driver needs no key. Enable it in the mypy
configuration::

    [tool.mypy]
    plugins = ["stratuslab_libcloud.mypy"]

Any other provider name, or one mypy cannot see as a literal, keeps libcloud's type.
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.nodes import Import, ImportAll, ImportFrom, MypyFile
from mypy.plugin import FunctionContext, Plugin
from mypy.types import Instance, LiteralType, Type, TypeType, get_proper_type

_GET_DRIVER = "libcloud.compute.providers.get_driver"
_DRIVER = "stratuslab_libcloud.StratusLabNodeDriver"
_PROVIDER = "stratuslab"  # stratuslab_libcloud.PROVIDER (not imported: no extension here)


def _literal_provider(ctx: FunctionContext) -> str | None:
    """The provider argument when mypy knows it as a string literal."""
    if not ctx.arg_types or len(ctx.arg_types[0]) != 1:
        return None
    arg = get_proper_type(ctx.arg_types[0][0])
    if isinstance(arg, Instance) and arg.last_known_value is not None:
        arg = arg.last_known_value
    if isinstance(arg, LiteralType) and isinstance(arg.value, str):
        return arg.value
    return None


def _get_driver(ctx: FunctionContext) -> Type:
    provider = _literal_provider(ctx)
    # libcloud's get_driver falls back to a case-insensitive match.
    if provider is None or provider.lower() != _PROVIDER:
        return ctx.default_return_type
    try:
        driver = ctx.api.named_generic_type(_DRIVER, [])
    except (KeyError, AssertionError):  # stratuslab_libcloud is not part of this build
        return ctx.default_return_type
    return TypeType(driver)


class StratusLabPlugin(Plugin):
    def get_function_hook(self, fullname: str) -> Callable[[FunctionContext], Type] | None:
        return _get_driver if fullname == _GET_DRIVER else None

    def get_additional_deps(self, file: MypyFile) -> list[tuple[int, str, int]]:
        # A script may register the provider elsewhere: the driver's types are still needed.
        if _imports_libcloud(file) and not file.fullname.startswith("stratuslab_libcloud"):
            return [(10, "stratuslab_libcloud", -1)]
        return []


def _imports_libcloud(file: MypyFile) -> bool:
    for imp in file.imports:
        if isinstance(imp, (ImportFrom, ImportAll)):
            names = [imp.id]
        elif isinstance(imp, Import):
            names = [name for name, _ in imp.ids]
        else:
            names = []
        if any(n == "libcloud" or n.startswith("libcloud.") for n in names):
            return True
    return False


def plugin(version: str) -> type[Plugin]:
    return StratusLabPlugin
