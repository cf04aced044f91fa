"""Where the benchmarks find things: this checkout (ROOT, put first on sys.path so that a benchmark measures
this checkout's edgekit, installed or not) and the shared test data ($EDGEKIT_TESTDATA, else
../shared/testdata beside the repository, as for the tests)."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = Path(os.environ.get("EDGEKIT_TESTDATA", ROOT.parent / "shared" / "testdata"))
CORAL = TESTDATA / "coral"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
