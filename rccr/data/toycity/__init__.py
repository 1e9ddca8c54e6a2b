"""Toy city: procedural street scenes with exact labels, in a game-like and a photo-like style.

The embedded benchmark of the workbench. One scene grammar (a straight street seen from a
car: road with lanes and markings, kerbs, sidewalks, grass verges, house fronts with
windows, walls, fences and hedges in the gaps, poles with traffic lights, signs and lamps,
trees, pedestrians, cyclists, parked and moving cars, trucks, buses and trams) is drawn
in two styles (``style``):

- **source**, game-like (GTA5 stand-in): every face one flat, saturated colour with hard
  edges; no texture, noise or blur; even lighting.
- **target**, photo-like (Cityscapes stand-in): the same materials in a greyer, shifted
  palette, with per-class texture, distance haze, global and graded lighting, white
  balance, optical blur, sensor noise and the ego-vehicle hood (ignored), and somewhat
  different layout statistics (camera, street width, how many cars, people and trees).

The shift sits where synthetic and real street images differ, mostly in appearance and a
little in layout, while geometry, shapes and context are shared. A source-only model
leans on colour and loses clearly on the target; self-training can recover much of that
because shape and context transfer.

Modules: ``style`` (the two looks), ``canvas`` (camera and drawing), ``scene`` (what a
street holds) and ``generate`` (the files on disk)::

    summary = make_toy_city("data/toy", ToyCitySpec(seed=0))
"""

from rccr.data.toycity.generate import ToyCitySpec, ToyCitySummary, make_toy_city
from rccr.data.toycity.scene import render_scene
from rccr.data.toycity.style import SOURCE_STYLE, TARGET_STYLE, ToyStyle

__all__ = [
    "SOURCE_STYLE",
    "TARGET_STYLE",
    "ToyCitySpec",
    "ToyCitySummary",
    "ToyStyle",
    "make_toy_city",
    "render_scene",
]
