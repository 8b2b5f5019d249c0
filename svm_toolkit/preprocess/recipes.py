"""Named Mel recipes: the registry ``svm preprocess --mel`` and the extractors read.

A recipe turns 16 kHz audio into *units*: the arrays a model takes one at a time (an ImageBind
2 s clip, a VGGish 0.96 s example, one frame of a generic spectrogram), each with the time it
starts at. Its input is mono, shape (samples,), except ImageBind's ``first`` take, which keeps
the channels, shape (channels, samples), as the reference's fbank receives them. Shards store a
sample's units as nested fixed-size lists in ``unit_shape`` (older datasets: flat vectors).

Each recipe also says how its mono 16 kHz signal is made from the file (its :class:`Take`): the
channel policy (a parameter, :class:`MelChannels`) and the resampler of its reference:

========== ============================ ===================================================
recipe     channels (default)           resampler
========== ============================ ===================================================
imagebind  ``first``: ImageBind's       ``sinc``: ``torchaudio.functional.resample``, as
           ``data.py`` removes each     ``imagebind/data.py`` calls it
           clip's mean over all
           channels, then hands the
           (C, T) clip to torchaudio's
           Kaldi ``fbank``, which reads
           channel 0 (take ``all``)
vggish     ``mean``: torchvggish's      ``resampy``: ``resampy.resample(..., kaiser_best)``,
           ``waveform_to_examples``     as ``torchvggish/vggish_input.py`` calls it
           averages the channels
librosa    ``mean`` (``librosa.load``'s ``sinc`` (the toolkit's default take)
           ``mono=True`` averages too)
========== ============================ ===================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from math import prod
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from svm_toolkit.config import to_dict
from svm_toolkit.errors import ConfigError
from svm_toolkit.jit import first_call
from svm_toolkit.names import did_you_mean
from svm_toolkit.preprocess.audio import CHANNELS, MEAN, Channels, Take
from svm_toolkit.preprocess.mel import (
    ImageBindAudio,
    VGGishAudio,
    clip_starts,
    imagebind_fbank,
    vggish_examples,
)

SAMPLE_RATE: Final = 16_000


@dataclass(frozen=True, slots=True)
class MelUnits:
    """One sample's Mel units.

    Attributes:
        units: float32, shape (n, *unit_shape).
        times_s: float32, shape (n,): where each unit starts in the audio, seconds.
    """

    units: npt.NDArray[np.float32]
    times_s: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class LibrosaMel:
    """A generic log-Mel spectrogram with every librosa parameter exposed.

    Attributes:
        n_fft: FFT size, samples.
        win_length: window length, samples.
        hop_length: hop, samples (160 = 10 ms at 16 kHz).
        n_mels: Mel bands.
        fmin, fmax: band edges, Hz (``fmax=None``: Nyquist).
        power: 1 for magnitude, 2 for power.
        htk: HTK Mel scale instead of Slaney's.
        norm: filter normalisation (``"slaney"`` or ``None``).
        window: window name as scipy knows it.
        center: pad so frames are centred on their time.
        top_db: dynamic range kept below the peak, dB (``None``: keep all).
    """

    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None
    power: float = 2.0
    htk: bool = False
    norm: str | None = "slaney"
    window: str = "hann"
    center: bool = True
    top_db: float | None = 80.0


@dataclass(frozen=True, slots=True)
class MelChannels:
    """Which channels of a multi-channel soundtrack each recipe reads.

    ``"mean"``: the mean of all channels; ``"first"``: channel 0 alone. Each default is the
    choice of the recipe's reference code (see the module's table), so the units equal what the
    reference computes from the same file; ``mean`` keeps both sides of a stereo mix.

    Attributes:
        imagebind: ImageBind's reference reads channel 0 (``"first"``).
        vggish: torchvggish averages the channels (``"mean"``).
        librosa: the channel mean, as ``librosa.load(mono=True)``.
    """

    imagebind: Channels = "first"
    vggish: Channels = "mean"
    librosa: Channels = "mean"

    def __post_init__(self) -> None:
        for name in ("imagebind", "vggish", "librosa"):
            if getattr(self, name) not in CHANNELS:
                raise ConfigError(
                    f"channels.{name} must be one of {', '.join(CHANNELS)}, "
                    f"got {getattr(self, name)!r}"
                )


def librosa_log_mel(
    waveform: npt.NDArray[np.float32], config: LibrosaMel = LibrosaMel()
) -> npt.NDArray[np.float32]:
    """``librosa.power_to_db(librosa.feature.melspectrogram(...), ref=1.0)``.

    Returns:
        float32, shape (frames, n_mels), dB; one frame every ``hop_length`` samples.
    """
    import librosa  # imported here: librosa pulls numba, ~1 s, and only this recipe needs it

    with first_call("librosa_log_mel"):  # compiles (or loads) numba kernels: svm_toolkit.jit
        mel: npt.NDArray[np.float32] = librosa.feature.melspectrogram(
            y=np.asarray(waveform, dtype=np.float32),
            sr=SAMPLE_RATE,
            n_fft=config.n_fft,
            win_length=config.win_length,
            hop_length=config.hop_length,
            n_mels=config.n_mels,
            fmin=config.fmin,
            fmax=config.fmax,
            power=config.power,
            htk=config.htk,
            norm=config.norm,
            window=config.window,
            center=config.center,
        )
    amin, db = 1e-10, 10.0 if config.power == 2.0 else 20.0
    log_mel = db * np.log10(np.maximum(mel, amin))
    if config.top_db is not None:
        log_mel = np.maximum(log_mel, log_mel.max(initial=-np.inf) - config.top_db)
    return log_mel.T.astype(np.float32)


@dataclass(frozen=True, slots=True)
class MelRecipe:
    """A named recipe: how to compute units and what one unit looks like.

    Attributes:
        name: registry key, also the shard folder ``preprocess/mel_<name>/``.
        unit_shape: shape of one unit.
        compute: 16 kHz float32 audio (the recipe's ``take``), shape (samples,) (the take
            ``all``: (channels, samples)) -> units.
        config: the constants, recorded in the shards' provenance (with ``channels`` and
            ``resampler``, the take's).
        take: how the mono 16 kHz signal is made from the file (channels, resampler).
    """

    name: str
    unit_shape: tuple[int, ...]
    compute: Callable[[npt.NDArray[np.float32]], MelUnits] = field(repr=False)
    config: Mapping[str, Any] = field(default_factory=dict)
    take: Take = MEAN

    @property
    def unit_size(self) -> int:
        """Values in one unit."""
        return prod(self.unit_shape)


def _imagebind(audio: npt.NDArray[np.float32]) -> MelUnits:
    config = ImageBindAudio()
    seconds = audio.shape[-1] / SAMPLE_RATE  # audio: (samples,) or (channels, samples)
    starts = clip_starts(seconds, config.clip_duration_s, config.clips_per_video)
    return MelUnits(imagebind_fbank(audio, config), np.asarray(starts, dtype=np.float32))


def _vggish(audio: npt.NDArray[np.float32]) -> MelUnits:
    config = VGGishAudio()
    units = vggish_examples(audio, config)
    times = np.arange(len(units), dtype=np.float32) * np.float32(config.example_hop_s)
    return MelUnits(units, times)


def _provenance(config: Any, take: Take) -> dict[str, Any]:
    return {**to_dict(config), "channels": take.channels, "resampler": take.resampler}


def imagebind_recipe(channels: Channels = "first") -> MelRecipe:
    """The ``imagebind`` recipe on the given channels (resampled as ImageBind's ``data.py``).

    ``first`` is the reference's: the fbank of channel 0 after each clip's mean over all
    channels is removed, so its take decodes every channel (take ``all``).
    """
    take = Take("all" if channels == "first" else "mean", "sinc")
    provenance = {**_provenance(ImageBindAudio(), take), "channels": channels}
    return MelRecipe("imagebind", (1, 128, 204), _imagebind, provenance, take)


def vggish_recipe(channels: Channels = "mean") -> MelRecipe:
    """The ``vggish`` recipe on the given channels (resampled as torchvggish does)."""
    take = Take(channels, "resampy")
    return MelRecipe("vggish", (96, 64), _vggish, _provenance(VGGishAudio(), take), take)


def librosa_recipe(config: LibrosaMel = LibrosaMel(), channels: Channels = "mean") -> MelRecipe:
    """The ``librosa`` recipe with the given parameters (one unit per spectrogram frame)."""

    def compute(audio: npt.NDArray[np.float32]) -> MelUnits:
        units = librosa_log_mel(audio, config)
        step = np.float32(config.hop_length / SAMPLE_RATE)
        return MelUnits(units, np.arange(len(units), dtype=np.float32) * step)

    take = Take(channels, "sinc")
    return MelRecipe("librosa", (config.n_mels,), compute, _provenance(config, take), take)


#: The recipes with their default parameters (each reference's channel policy).
MEL_RECIPES: Final[Mapping[str, MelRecipe]] = {
    recipe.name: recipe for recipe in (imagebind_recipe(), vggish_recipe(), librosa_recipe())
}


def get_recipes(
    names: tuple[str, ...],
    librosa: LibrosaMel = LibrosaMel(),
    channels: MelChannels = MelChannels(),
) -> list[MelRecipe]:
    """Look recipes up by name, with their parameters (``librosa``) and channels (``channels``).

    Raises:
        ConfigError: an unknown name (the message lists the known ones).
    """
    unknown = [n for n in names if n not in MEL_RECIPES]
    if unknown:
        known = ", ".join(MEL_RECIPES)
        hints = "".join(did_you_mean(n, MEL_RECIPES) for n in unknown)
        raise ConfigError(f"unknown Mel recipe {', '.join(unknown)}; choose from {known}{hints}")
    made = {
        "imagebind": lambda: imagebind_recipe(channels.imagebind),
        "vggish": lambda: vggish_recipe(channels.vggish),
        "librosa": lambda: librosa_recipe(librosa, channels.librosa),
    }
    return [made[n]() for n in names]
