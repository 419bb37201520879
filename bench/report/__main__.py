"""`python -m bench.report results/<preset>`: write the report again from whatever cells exist.

The report settings are the ones the sweep stored with its results (report_config.yaml), so a folder
always gives the same report; --config names another file, whose keys override the defaults."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bench import skip_final_collection_at_exit
from bench.atomic import write_text
from bench.config import ConfigError, ReportConfig
from bench.results import REPORT_CONFIG_NAME, check_results_folder

DEFAULTS = Path(__file__).resolve().parents[1] / "conf" / "report" / "default.yaml"  # inside the package


def load_report_config(results_dir: Path, path: str | None):
    """The schema's defaults, then bench/conf/report/default.yaml, then the folder's stored settings or the
    file given; unknown keys and wrong types are errors."""
    cfg = OmegaConf.structured(ReportConfig)
    sources = [DEFAULTS] if DEFAULTS.exists() else []
    chosen = Path(path) if path else results_dir / REPORT_CONFIG_NAME
    if path or chosen.exists():
        sources.append(chosen)
    for source in sources:
        if not source.is_file():
            raise FileNotFoundError(f"report config {source} does not exist")
        try:
            loaded = OmegaConf.load(source)
        except yaml.YAMLError as e:  # name the file: the folder's own settings, or the one given
            problem = str(getattr(e, "problem", None) or e).splitlines()[0]
            raise ConfigError(
                "--config" if path else "report config", str(source), f"not valid YAML ({problem}); fix or delete it"
            ) from None
        if not isinstance(loaded, type(cfg)):
            raise ConfigError("--config", str(source), "must be a YAML mapping of report settings")
        cfg = OmegaConf.merge(cfg, loaded)
    return cfg, chosen if chosen.exists() else (DEFAULTS if DEFAULTS.exists() else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results_dir", help="a sweep's results folder, e.g. results/default")
    parser.add_argument(
        "--against",
        default=None,
        metavar="OTHER",
        help="compare with another results folder instead (writes compare-<OTHER>.md into the first)",
    )
    parser.add_argument(
        "--config",
        default=None,
        help=f"report settings (YAML); default: the folder's {REPORT_CONFIG_NAME}, else {DEFAULTS}",
    )
    args = parser.parse_args(argv)
    results_dir = Path(args.results_dir)
    try:
        cfg, source = load_report_config(results_dir, args.config)
        if not args.against:
            check_results_folder(results_dir)  # a mistyped folder fails at once, before pandas and matplotlib load
        from bench.report.build import write_report

        if args.against:
            from bench.report.compare import compare

            text = compare(results_dir, Path(args.against), cfg)
            out = results_dir / f"compare-{Path(args.against).name}.md"
            write_text(out, text)
            print(text)
            return 0
        paths = write_report(results_dir, cfg)
    except yaml.YAMLError as e:
        print(
            f"bench.report: error: {args.config} is not valid YAML: {getattr(e, 'problem', None) or e}".splitlines()[0],
            file=sys.stderr,
        )
        return 2
    except (FileNotFoundError, ConfigError, OmegaConfBaseException, OSError) as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"bench.report: error: {message}", file=sys.stderr)
        return 2
    print(f"wrote {paths[0]} and {paths[1]} (report settings: {source})")
    return 0


if __name__ == "__main__":
    skip_final_collection_at_exit()
    sys.exit(main())
