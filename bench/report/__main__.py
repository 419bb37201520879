"""`python -m bench.report results/<preset>`: write the report again from whatever cells exist."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omegaconf import OmegaConf

CONF = Path(__file__).resolve().parents[2] / "conf" / "report" / "default.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("results_dir", help="a sweep's results folder, e.g. results/default")
    parser.add_argument("--config", default=str(CONF), help="report config (targets, baseline); default: %(default)s")
    args = parser.parse_args(argv)
    from bench.report import write_report

    try:
        cfg = OmegaConf.load(args.config)
        paths = write_report(Path(args.results_dir), cfg)
    except FileNotFoundError as e:
        print(f"bench.report: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {paths[0]} and {paths[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
