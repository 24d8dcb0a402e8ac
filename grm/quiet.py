"""Warnings that the user did not cause stay out of the terminal and the DVC log.

torch, torchvision and compressai warn about their own deprecations when imported
(compressai: "torch.jit.script is deprecated"); nothing a user can act on. Set before
they are imported; ``python -W`` or PYTHONWARNINGS=default bring them back.
"""

import sys
import warnings


def quiet_dependencies() -> None:
    if sys.warnoptions:  # the user asked for warnings explicitly
        return
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings(
        "ignore", category=UserWarning, module=r"(torch|torchvision|compressai|torch_geometric)\b"
    )
