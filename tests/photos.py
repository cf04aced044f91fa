"""Real pictures written as files for tests: scikit-image's bundled photos (a pip package, so always here) and,
where the shared test data has them, Coral's test pictures."""

import shutil

from testdata import CORAL

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "hubble_deep_field", "retina")
CORAL_PHOTOS = ("cat.bmp", "parrot.jpg", "grace_hopper.bmp")


def write_photos(folder, names=PHOTOS, coral=()):
    """scikit-image's photos `names` as PNG files in `folder` (made if needed), and the Coral pictures `coral`
    that the shared test data holds; returns `folder`."""
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(getattr(data, name)()).save(folder / f"{name}.png")
    for name in coral:
        if (CORAL / name).exists():
            shutil.copy(CORAL / name, folder / name)
    return folder
