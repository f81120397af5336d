from collections.abc import Callable
from typing import Any

def decode(
    body: bytes, dumps: Callable[..., bytes], option: int, amount: Callable[[Any], str], /
) -> tuple[list[tuple[Any, ...]], int] | None: ...
