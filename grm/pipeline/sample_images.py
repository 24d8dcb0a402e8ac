"""Photos that ship inside installed packages: the default data, no download needed."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

# package → (folder inside the package, file names)
_SOURCES = {
    "skimage": (
        "data",
        [
            "astronaut.png",
            "chelsea.png",
            "coffee.png",
            "motorcycle_left.png",
            "motorcycle_right.png",
            "rocket.jpg",
            "hubble_deep_field.jpg",
            "ihc.png",
            "retina.jpg",
            "camera.png",
            "moon.png",
            "brick.png",
            "grass.png",
            "gravel.png",
        ],
    ),
    "sklearn": ("datasets/images", ["china.jpg", "flower.jpg"]),
    "matplotlib": ("mpl-data/sample_data", ["grace_hopper.jpg"]),
}


def bundled_photos() -> dict[str, Path]:
    """Name → path of every bundled photo found in the installed packages."""
    found: dict[str, Path] = {}
    for pkg, (folder, names) in _SOURCES.items():
        spec = find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(list(spec.submodule_search_locations)[0]) / folder
        for name in names:
            path = root / name
            if path.is_file():
                found[path.stem] = path
    return found
