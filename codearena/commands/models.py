"""`codearena models`: the configured models, where each one's weights or endpoint are, and whether it
can be used right now (with the reason when not)."""

from __future__ import annotations

import argparse

from codearena.commands._common import add_models_option

HELP = "list the configured models and whether each is usable now"
DESCRIPTION = (
    "List the models from --models / $CODEARENA_MODELS (or the built-in local pair smollm2-135m and\n"
    "qwen2.5-coder-0.5b), with backend, weights or endpoint, and availability. Exit status 0 even when\n"
    "some model is unavailable; the reason is in the listing."
)


def configure(parser: argparse.ArgumentParser) -> None:
    add_models_option(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def run(args: argparse.Namespace) -> int:
    import json

    from serving.models import describe_models

    rows = describe_models(args.models)
    if args.format == "json":
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    headers = ("name", "backend", "model", "where", "available")
    table = [[r["name"], r["backend"], r["model"], r["where"],
              "yes" if r["available"] else f"no: {r['reason']}"] for r in rows]
    widths = [max(len(h), *(len(str(row[i])) for row in table)) for i, h in enumerate(headers[:-1])]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)) + "  " + headers[-1])
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0
