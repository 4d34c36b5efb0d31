"""Train disco on 3D Shapes and print the held-out metric table.

    python scripts/train_3dshapes.py                                  # full replica (made once under data/), configs/shapes3d.yaml
    python scripts/train_3dshapes.py --subsample floor_hue=2,wall_hue=2,object_hue=2 --max-minutes 15
    python scripts/train_3dshapes.py --dataset data/3dshapes.h5

Extra arguments are config overrides (``--objective.vae.beta 4``, ``--set key=value``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_dsprites import main as train_main

if __name__ == "__main__":
    sys.exit(train_main(name="shapes3d", default_config="configs/shapes3d.yaml"))
