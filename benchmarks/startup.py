"""Start-up cost of the ``svm`` command: wall time and peak memory of commands that load no model.

    .venv/bin/python benchmarks/startup.py [--runs 9] [--samples 1000] [--workdir DIR]

Runs each command below in a fresh process ``--runs`` times, round-robin (so a burst of load
on the machine hits every command alike), after one untimed warm-up run of each, and prints per
command the median and the fastest wall time, the median minus that of ``python -c pass`` (the
interpreter's own start-up, measured in the same run), the peak resident memory of the child
process (``ru_maxrss`` from ``wait4``, the largest of its runs) and the heavy packages it
imported (one more run that lists ``sys.modules`` at exit). ``DEMO`` is a dataset whose
``manifest.parquet`` is built once, offline, by ``svm manifest urls`` from a generated list of
``--samples`` URLs (nothing is fetched). Then it checks the targets of issue 21: ``svm --help``
within 0.3 s of ``python -c pass`` and under 100 MB peak RSS.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: Packages worth naming when a command imports them (start-up time and memory).
HEAVY: Final = (
    "torch",
    "ray",
    "librosa",
    "onnxruntime",
    "cv2",
    "scipy",
    "matplotlib",
    "datasets",
    "pandas",
    "pyarrow",
    "numpy",
    "av",
    "yt_dlp",
    "yaml",
    "tqdm",
    "click",
)
#: Targets of issue 21 for ``svm --help``.
HELP_OVER_PYTHON_S: Final = 0.3
HELP_RSS_MB: Final = 100.0

#: Prepended to a probe run: at exit, writes the process's peak RSS (``VmHWM`` of
#: /proc/self/status, which counts from the interpreter's exec) and then ``sys.modules``, one
#: name a line, to $SVM_PROBE_OUT. Standard library only, nothing imported before exit.
PROBE: Final = (
    "import atexit, os, sys\n"
    "def _probe():\n"
    "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
    "    with open(os.environ['SVM_PROBE_OUT'], 'w') as out:\n"
    "        out.write('\\n'.join([hwm.split()[1], *sorted(sys.modules)]))\n"
    "atexit.register(_probe)\n"
)
#: A probe run of the CLI, as the ``svm`` script runs it.
SVM_PROBE: Final = PROBE + "sys.argv[0] = 'svm'\nfrom svm_toolkit.entry import main\nmain()\n"


@dataclass(frozen=True)
class Command:
    """One command line to time."""

    label: str
    argv: tuple[str, ...]  # after the interpreter (``-c pass``) or after ``svm``
    is_svm: bool = True


@dataclass(frozen=True)
class Probe:
    """What one untimed run of a command used."""

    peak_rss_mb: float  # VmHWM: kB of 1,024 bytes, shown in MB of 10^6 bytes
    heavy: tuple[str, ...]  # the HEAVY packages it imported


def svm_prefix() -> list[str]:
    """The ``svm`` console script next to this interpreter, or ``python -m svm_toolkit``."""
    script = Path(sys.executable).with_name("svm")
    return [str(script)] if script.exists() else [sys.executable, "-m", "svm_toolkit"]


def run_once(argv: list[str]) -> float:
    """Run ``argv`` with its output discarded; its wall time in seconds.

    Raises:
        subprocess.CalledProcessError: the command exited with a non-zero status.
    """
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def probe(command: Command, workdir: Path) -> Probe:
    """Peak RSS and heavy imports of ``command`` (an untimed run under :data:`PROBE`).

    The peak is measured inside the child: ``ru_maxrss`` from ``wait4`` would also count the
    pages of this (larger) process that the child had before it exec'd the interpreter.
    """
    out = workdir / "probe.txt"
    code, rest = (SVM_PROBE, command.argv) if command.is_svm else (PROBE, command.argv[2:])
    if not command.is_svm:
        code += command.argv[1] + "\n"  # the ``pass`` of ``-c pass``
    subprocess.run(
        [sys.executable, "-c", code, *rest],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "SVM_PROBE_OUT": str(out)},
        check=True,
    )
    hwm_kb, *modules = out.read_text().splitlines()
    loaded = {name.split(".")[0] for name in modules}
    return Probe(int(hwm_kb) * 1024 / 1e6, tuple(name for name in HEAVY if name in loaded))


def build_demo(workdir: Path, samples: int) -> Path:
    """``DEMO``: a manifest of ``samples`` generated URLs (built by ``svm manifest urls``)."""
    urls = workdir / "urls.csv"
    rows = [f"v{i:06d},https://videos.example.org/clip/{i:06d}.mp4" for i in range(samples)]
    urls.write_text("id,url\n" + "\n".join(rows) + "\n")
    demo = workdir / "DEMO"
    argv = [*svm_prefix(), "manifest", "urls", str(urls), "-o", str(demo), "--id-column", "id"]
    subprocess.run([*argv, "--overwrite"], check=True, capture_output=True)
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="timed runs of each command")
    parser.add_argument("--samples", type=int, default=1000, help="rows of DEMO's manifest")
    parser.add_argument("--workdir", type=Path, help="where DEMO goes (default: a temp folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="svm-startup-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        demo = build_demo(workdir, args.samples)
        commands = [
            Command("python -c pass", ("-c", "pass"), is_svm=False),
            Command("svm --help", ("--help",)),
            Command("svm -V", ("-V",)),
            Command("svm manifest --help", ("manifest", "--help")),
            Command("svm download --help", ("download", "--help")),
            Command("svm manifest info DEMO", ("manifest", "info", str(demo))),
        ]

        def argv(command: Command) -> list[str]:
            return (
                [*svm_prefix(), *command.argv]
                if command.is_svm
                else [
                    sys.executable,
                    *command.argv,
                ]
            )

        for command in commands:  # warm-up: file cache, .pyc files
            run_once(argv(command))
        walls: dict[str, list[float]] = {c.label: [] for c in commands}
        for _ in range(args.runs):
            for command in commands:
                walls[command.label].append(run_once(argv(command)))
        probes = {c.label: [probe(c, workdir) for _ in range(3)] for c in commands}

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}; Python {platform.python_version()}; "
        f"{args.runs} runs each; DEMO = a manifest of {args.samples} URLs"
    )
    base = statistics.median(walls[commands[0].label])
    header = f"{'command':<24} {'median s':>8} {'min s':>6} {'+python s':>9} {'peak MB':>7}  loads"
    print(header)
    print("-" * len(header))
    for command in commands:
        median = statistics.median(walls[command.label])
        peak = max(p.peak_rss_mb for p in probes[command.label])
        over = f"{median - base:+.3f}" if command.is_svm else ""
        shown = ", ".join(probes[command.label][0].heavy) or "-"
        print(
            f"{command.label:<24} {median:>8.3f} {min(walls[command.label]):>6.3f} "
            f"{over:>9} {peak:>7.1f}  {shown}"
        )
    over_s = statistics.median(walls["svm --help"]) - base
    peak_mb = max(p.peak_rss_mb for p in probes["svm --help"])
    print(
        f"target: svm --help within {HELP_OVER_PYTHON_S} s of python -c pass: "
        f"{over_s:+.3f} s, {'met' if over_s <= HELP_OVER_PYTHON_S else 'MISSED'}"
    )
    print(
        f"target: svm --help under {HELP_RSS_MB:.0f} MB peak RSS: "
        f"{peak_mb:.1f} MB, {'met' if peak_mb < HELP_RSS_MB else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
