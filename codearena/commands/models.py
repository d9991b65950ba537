"""`codearena models`: the configured models, where each one's weights or endpoint are, and whether it
can be used right now (with the reason when not); for a pool (``base_urls``), each endpoint's state."""

from __future__ import annotations

import argparse

from codearena.commands._common import add_models_option

HELP = "list the configured models and whether each is usable now"
DESCRIPTION = (
    "List the models from --models / $CODEARENA_MODELS (or the built-in local pair smollm2-135m and\n"
    "qwen2.5-coder-0.5b), with backend, weights or endpoint, and availability. A pool (base_urls) lists\n"
    "each endpoint under its model: healthy or down (probed now), requests in flight, served, the last\n"
    "error. Counters are this process's own: a fresh listing shows the probe, not a running arena's\n"
    "traffic. Exit status 0 even when some model is unavailable; the reason is in the listing."
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
    for row, r in zip(table, rows, strict=True):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
        for e in r["endpoints"]:
            print(f"    {e['url']}  {e['state']}  in flight {e['in_flight']}  served {e['served']}"
                  + (f"  last error: {e['last_error']}" if e["last_error"] else ""))
    return 0
