"""`brainfoundry.synth`: realistic multi-sequence brain MRI datasets made from real anatomy.

SynthSeg-style generative model on the MNI152 2009 template bundled with nilearn: tissue maps ->
random pose, scaling and smooth warp -> ageing (ventricles, sulci, cortex, WMH) -> pathology
(infarcts, meningiomas, distractors) -> per-sequence contrast -> scanner artefacts. Fine-tuning
splits come from a research ("source") domain, test splits from a shifted clinical domain.
FOMO26's tasks (`fomo26`): a T2 slab of the nerves and vessels around the brainstem
(`trigeminal`), polymicrogyria on T1 with a modelled, defaced head in the test split
(`polymicrogyria`, `head`), and a multi-class probe task with demographic groups.

    from brainfoundry.synth import SynthConfig, generate
    generate(SynthConfig(kind="infarct", n=20, resolution=2.0, seed=0), "data/infarct")
"""

from __future__ import annotations

from .config import GENERATOR_VERSION, KINDS, RESOLUTION_PRESETS, SynthConfig, parse_resolution

__all__ = [
    "GENERATOR_VERSION",
    "KINDS",
    "RESOLUTION_PRESETS",
    "SEQUENCES",
    "SessionSpec",
    "SynthConfig",
    "generate",
    "make_session",
    "parse_resolution",
    "plan",
]

SEQUENCES = ("t1", "t2", "flair", "pd", "t1c", "dwi_b1000", "adc", "t2s", "swi")


def __getattr__(name: str):  # torch-heavy parts load on first use
    if name == "generate":
        from .writers import generate

        return generate
    if name in ("make_session", "SessionSpec"):
        from . import cases

        return getattr(cases, name)
    if name == "plan":
        from .cohorts import plan

        return plan
    raise AttributeError(name)
