"""Make the offline dataset replicas: a thin wrapper of ``disco data make``.

python scripts/make_data.py dsprites --out data/dsprites.h5 [--subsample NAME=STEP ...] [--force]
python scripts/make_data.py shapes3d --out data/shapes3d.h5
"""

from __future__ import annotations

import sys

from disco.cli import run_guarded
from disco.data.cli import main

if __name__ == "__main__":
    sys.exit(run_guarded(lambda: main(["make", *sys.argv[1:]])))
