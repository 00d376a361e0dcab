#!/usr/bin/env bash
# Builds and runs the Fortran example against an exported rosenbrock gradient, and checks that
# the loss goes down. Installs gfortran from the distribution's packages if it is missing
# (root, apt). Run from anywhere; `.ci/run` runs it.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v gfortran > /dev/null; then
    apt-get install -y -q gfortran > /dev/null 2>&1 \
        || { apt-get update -q > /dev/null && apt-get install -y -q gfortran > /dev/null; }
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cargo run --release -q -- export ir/models/rosenbrock.ir --grad -o "$dir/rosenbrock"
gfortran -O2 examples/fortran/descent.f90 "$dir/rosenbrock.o" -o "$dir/descent"
"$dir/descent" | tee "$dir/out"
python3 - "$dir/out" <<'PY'
import sys
losses = [float(l.split()[-1]) for l in open(sys.argv[1]) if l.startswith("loss")]
final = [float(l.split()[-1]) for l in open(sys.argv[1]) if l.startswith("final loss")][0]
assert len(losses) >= 5, losses
assert all(b <= a for a, b in zip(losses, losses[1:])), losses
assert final < 0.01 * losses[0], (final, losses[0])
print("fortran example: the loss fell from %g to %g" % (losses[0], final))
PY
