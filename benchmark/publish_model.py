"""Publish a trained agent on a results page: its actor as a small model file that --eval-model loads, and a short
animated GIF of it playing, rendered headless.

    python benchmark/publish_model.py RUN_DIR --out docs/results/PAGE/models [--seconds 5] [--width 160] [--gif-only]

RUN_DIR is a run's directory with the model its --save-model wrote ({exp_name}.pt). Written in --out:

  {env}__{script}__{seed}.pt    the actor and the run's args, nothing else (what --eval-model needs; the critics and
                                their targets would make it three to five times larger): under 1 MB.
  {env}__{script}__{seed}.gif   the first --seconds of one evaluation episode (the run's seed; the policy as the
                                script evaluates it: deterministic, or for sac_discrete_atari.py epsilon-greedy), from
                                the video the script's own --eval-model --capture-video records, at
                                --width pixels and at most --fps frames per second.

--gif-only writes the GIF alone, for an actor too large to keep on a page (an Atari actor's Nature CNN takes about
6.7 MB): the run's directory keeps the whole model. The model is evaluated through the script itself, as a user would:
`python {script}.py --eval-model FILE --seed SEED --eval-episodes 1 --capture-video`, and the line it prints is
printed here.
"""

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ("sac_continuous_action", "sac_v1_value", "sac_discrete_atari")
LIMIT = 1_000_000  # bytes: a published model stays small enough to commit


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def actor_only(run_dir: Path) -> tuple[dict, str]:
    """The run's saved model, less everything but the actor and the args; and the file's stem."""
    models = [path for path in run_dir.glob("*.pt") if path.name != "checkpoint.pt"]
    if len(models) != 1:
        fail(f"RUN_DIR '{run_dir}': expected one model saved by --save-model, found {len(models)}")
    saved = torch.load(models[0], map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or saved.get("script") not in SCRIPTS:
        fail(f"'{models[0]}': not a model saved by one of {', '.join(SCRIPTS)} (--save-model)")
    args = saved["args"]
    stem = f"{args['env_id'].replace('/', '-')}__{saved['script']}__{args['seed']}"
    return {"script": saved["script"], "args": args, "actor": saved["actor"]}, stem


def gif_from_video(video: Path, gif: Path, seconds: float, width: int, fps: int) -> int:
    """The first `seconds` of the video as a looping GIF, `width` pixels wide, at most `fps` frames per second; its
    number of frames."""
    from moviepy import VideoFileClip
    from PIL import Image

    with VideoFileClip(str(video)) as clip:
        step = max(1, round(clip.fps / fps))  # keep every step-th frame
        frames = [frame for i, frame in enumerate(clip.iter_frames()) if i % step == 0 and i < seconds * clip.fps]
        # Milliseconds per kept frame, so that the episode plays at its own speed; GIF counts in hundredths of a second.
        duration = 10 * round(100 * step / clip.fps)
    height = round(width * frames[0].shape[0] / frames[0].shape[1])
    images = [Image.fromarray(np.asarray(f)).resize((width, height), Image.LANCZOS) for f in frames]
    # One palette for all the frames (from the first), so that the GIF does not flicker and compresses well.
    palette = images[0].quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    quantized = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
    quantized[0].save(gif, save_all=True, append_images=quantized[1:], duration=duration, loop=0,
                      optimize=True)  # fmt: skip
    return len(quantized)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument("--out", type=Path, required=True, help="where the model and its GIF go")
    parser.add_argument("--seconds", type=float, default=5.0, help="how much of the episode the GIF shows (default 5)")
    parser.add_argument("--width", type=int, default=160, help="the GIF's width in pixels (default 160)")
    parser.add_argument("--fps", type=int, default=15, help="the GIF's frames per second, at most (default 15)")
    parser.add_argument("--gif-only", action="store_true", help="write the GIF alone, not the model file")
    args = parser.parse_args(argv)
    if not args.run_dir.is_dir():
        fail(f"RUN_DIR '{args.run_dir}' is not a directory")
    for flag in ("seconds", "width", "fps"):
        if getattr(args, flag) <= 0:
            fail(f"--{flag} must be positive, got {getattr(args, flag)}")
    model, stem = actor_only(args.run_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        path = (Path(work) if args.gif_only else args.out) / f"{stem}.pt"
        torch.save(model, path)
        size = path.stat().st_size
        if size > LIMIT and not args.gif_only:
            path.unlink()
            fail(f"the actor of '{args.run_dir}' takes {size:,} bytes, over {LIMIT:,}: not published "
                 "(--gif-only makes its GIF alone)")  # fmt: skip
        command = [sys.executable, str(ROOT / f"{model['script']}.py"), "--eval-model", str(path.resolve()), "--seed",
                   str(model["args"]["seed"]), "--eval-episodes", "1", "--capture-video"]  # fmt: skip
        result = subprocess.run(command, cwd=work, capture_output=True, text=True)
        if result.returncode != 0:
            fail(f"{' '.join(command)}: exit {result.returncode}: {result.stderr.strip().splitlines()[-1:]}")
        (video,) = Path(work).rglob("*.mp4")
        frames = gif_from_video(video, args.out / f"{stem}.gif", args.seconds, args.width, args.fps)
    played = re.search(r"^\S+: (return|score) .*$", result.stdout, re.MULTILINE)
    print(
        f"{'(model not kept)' if args.gif_only else path} ({size:,} bytes); {args.out / stem}.gif ({frames} frames, "
        f"{(args.out / f'{stem}.gif').stat().st_size:,} bytes); {played.group(0) if played else result.stdout}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
