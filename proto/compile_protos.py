"""Generate the Python code for proto/tarjama/v1/*.proto: the one script the build, CI and Docker use.

protoc runs with `-I proto` and writes into src/, so the generated modules import each other as
`tarjama.v1.…`, which is where the package is; nothing needs post-editing.

    python proto/compile_protos.py           # (re)write src/tarjama/v1/*_pb2*.py
    python proto/compile_protos.py --check   # exit 1 if the committed code is stale
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
PROTO_DIR = PROTO_ROOT / "tarjama" / "v1"
SRC_ROOT = PROTO_ROOT.parent / "src"
PACKAGE_DIR = SRC_ROOT / "tarjama" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generate(out_root: Path) -> list[Path]:
    from grpc_tools import protoc  # build-time dependency only

    protos = sorted(PROTO_DIR.glob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"  # well-known types
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *[str(p) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    out_dir = out_root / "tarjama" / "v1"
    return sorted(p for p in out_dir.iterdir() if p.name.endswith(GENERATED_SUFFIXES))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the generated code is stale")
    args = parser.parse_args()
    if not args.check:
        for path in generate(SRC_ROOT):
            print(f"wrote {path.relative_to(PROTO_ROOT.parent)}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        stale = [
            p.name
            for p in fresh
            if not (PACKAGE_DIR / p.name).exists() or not filecmp.cmp(p, PACKAGE_DIR / p.name, shallow=False)
        ]
    if stale:
        print(f"generated code is stale: {', '.join(stale)}; run python proto/compile_protos.py", file=sys.stderr)
        return 1
    print("generated code is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
