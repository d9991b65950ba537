"""`codearena serve`: the arena in the browser (Battle, Side by side, Leaderboard, Data)."""

from __future__ import annotations

import argparse

from codearena.commands._common import add_db, add_models_option, db_path

HELP = "run the arena web app (anonymous battles, named side by side, live leaderboard, downloads)"
DESCRIPTION = (
    "Serve the Gradio arena. With no options it runs the built-in local pair (smollm2-135m and\n"
    "qwen2.5-coder-0.5b on llama.cpp, CPU, no key), the built-in prompts and ./codearena.db.\n"
    "A model that cannot be used is shown as unavailable and left out of battles.\n\n"
    "examples:\n"
    "  codearena serve\n"
    "  codearena serve --models models.toml --prompts question.jsonl --db votes.db --port 8080\n"
    "  codearena serve --host 0.0.0.0 --weight qwen2.5-coder-0.5b=2 --votes-per-minute 10\n"
    "  codearena serve --run-concurrency 2 --run-queue 64      # the Run buttons' queue\n"
    "  codearena serve --no-run                                # no Run buttons"
)


def configure(parser: argparse.ArgumentParser) -> None:
    add_models_option(parser)
    parser.add_argument("--prompts", default=None, metavar="SRC",
                        help="prompts: 'builtin' (default), 'hub', or a CodeArena/Arena-Hard/MT-bench file")
    add_db(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; "
                        "0.0.0.0 in Docker)")
    parser.add_argument("--port", type=int, default=7860, help="port to bind (default 7860)")
    parser.add_argument("--weight", action="append", default=[], metavar="NAME=W",
                        help="sampling weight of a model in anonymous battles (default 1 each; repeatable)")
    parser.add_argument("--votes-per-minute", type=int, default=30, metavar="N",
                        help="votes per client address per minute (0 = unlimited; default 30)")
    parser.add_argument("--battles-per-minute", type=int, default=30, metavar="N",
                        help="battles per client address per minute (0 = unlimited; default 30)")
    parser.add_argument("--leaderboard-refresh", type=float, default=30.0, metavar="S",
                        help="seconds between leaderboard recomputations (default 30)")
    parser.add_argument("--concurrency", type=int, default=64, metavar="N",
                        help="battles whose answers stream at once (default 64; more wait their turn). Votes "
                        "and other short events have 64 places of their own: they never wait behind streams")
    parser.add_argument("--trusted-proxy", action="append", default=[], metavar="ADDR",
                        help="a reverse proxy (address or network, e.g. 127.0.0.1 or 10.0.0.0/8) whose "
                        "X-Forwarded-For names the client; repeatable. Without one, the connecting address "
                        "is the client, and forwarded headers are ignored (rate limits and voter hashes key "
                        "on the client)")
    parser.add_argument("--max-prompt-chars", type=int, default=20_000, metavar="N",
                        help="longest prompt or follow-up a client may send, in characters (default 20000)")
    parser.add_argument("--sampling", choices=["uniform", "active"], default="uniform",
                        help="which pairs meet: uniform (by --weight, the default) or active: the pairs whose "
                        "vote shrinks the ranking's uncertainty most, recomputed with each leaderboard refresh "
                        "(every pair keeps a floor; new models are boosted). Each vote keeps its pair's "
                        "probability: `codearena rate --reweight propensity` undoes either")
    parser.add_argument("--max-turns", type=int, default=8, metavar="N",
                        help="most turns (prompt + follow-ups) in one battle (default 8)")
    runs = parser.add_argument_group("code runs", "the Run buttons: each side's code runs in the bubblewrap "
                                     "sandbox (`codearena sandbox list` says what runs here), and every run "
                                     "is stored with the vote")
    runs.add_argument("--run-concurrency", type=int, default=None, metavar="N",
                      help="runs at once, arena-wide (default: half the CPU cores, at least 1)")
    runs.add_argument("--run-queue", type=int, default=32, metavar="N",
                      help="runs that may wait for a free slot; past it a Run press is answered 'busy' "
                      "(default 32)")
    runs.add_argument("--runs-per-minute", type=int, default=30, metavar="N",
                      help="Run presses per client address per minute (0 = unlimited; default 30)")
    runs.add_argument("--no-run", action="store_true", help="no Run buttons: answers are shown, never run")


def run(args: argparse.Namespace) -> int:
    from arena_ui.serve import ServeOptions, serve

    return serve(ServeOptions(
        models=args.models, prompts=args.prompts, db=db_path(args), host=args.host, port=args.port,
        weights=args.weight, votes_per_minute=args.votes_per_minute,
        battles_per_minute=args.battles_per_minute, leaderboard_refresh_s=args.leaderboard_refresh,
        concurrency=args.concurrency, trusted_proxies=args.trusted_proxy, max_prompt_chars=args.max_prompt_chars,
        max_turns=args.max_turns, sampling=args.sampling, run_enabled=not args.no_run,
        run_concurrency=args.run_concurrency, run_queue=args.run_queue, runs_per_minute=args.runs_per_minute,
    ))
