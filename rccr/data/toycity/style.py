"""The two domains of the toy city: layout statistics, palettes and the photo finish.

A ``ToyStyle`` holds every knob in which the source (game-like) and the target
(photo-like) domains of ``rccr.data.toycity`` differ. The scene grammar is shared; the
style decides which numbers it samples (horizon, road width, how many cars, people and
trees), which colours each class is drawn in, and how the flat render is finished:
per-class texture, distance haze, lighting, white balance, optical blur and sensor noise.
``SOURCE_STYLE`` switches the finish off entirely; ``TARGET_STYLE`` switches it on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TypeVar, cast

import numpy as np

from rccr.data.labels import CLASS_NAMES, NUM_CLASSES

__all__ = ["SOURCE_STYLE", "TARGET_STYLE", "ToyStyle"]

RGB = tuple[int, int, int]
Range = tuple[float, float]
_T = TypeVar("_T")


@dataclass(frozen=True)
class ToyStyle:
    """Layout statistics and appearance of one toy-city domain.

    Ranges are ``(low, high)`` and sampled uniformly once per image. Lengths are in
    metres in the world, fractions are of the image width or height.

    Attributes:
        horizon: Horizon row as a fraction of the image height.
        focal: Focal length as a fraction of the image width (smaller is wider-angle).
        camera_height: Height of the camera above the road.
        road_half_width: Half the width of the road, kerb to kerb.
        sidewalk_width: Width of each sidewalk.
        verge_prob: Probability that a side has a grass verge between sidewalk and houses.
        building_height: Height of each building along the street.
        gap_prob: Probability that a street-front segment is a gap (filled with a wall,
            fence or hedge) rather than a building.
        backdrop_prob: Probability that a row of buildings closes the street far away.
        crosswalk_prob: Probability of a zebra crossing.
        parked_car_prob: Probability that a parking slot along a kerb is taken.
        cars_mean: Mean (Poisson) number of moving vehicles.
        large_vehicle_prob: Probability that a moving vehicle is a truck or a bus.
        train_prob: Probability of a tram in the middle of the road.
        persons_mean: Mean number of pedestrians.
        riders_mean: Mean number of cyclists and motorcyclists (parked bicycles: half).
        trees_mean: Mean number of street trees.
        poles_mean: Mean number of poles carrying traffic lights, signs or lamps.
        colors: Candidate base colours of each train id (19 tuples of RGB triples); one is
            picked per object.
        window_color: Colour of windows and vehicle glass.
        marking_color: Colour of lane markings and zebra stripes.
        color_jitter: Std of the per-object multiplicative colour jitter.
        side_shade: Brightness factor of faces turned away from the light.
        sky_gradient: How much the sky lightens towards the horizon (0: flat).
        texture_coarse: Per-class amplitude of blotchy low-frequency texture (facade
            weathering, road patches, clouds, foliage clumps), relative brightness.
        texture_fine: Per-class amplitude of per-pixel grain (asphalt, grass, leaves).
        haze_prob: Probability of haze or fog in an image.
        haze_strength: Opacity of the haze at infinite distance.
        haze_distance: Distance at which the haze reaches 63% of its strength.
        haze_color: Colour of the haze.
        brightness: Global brightness factor.
        contrast: Contrast factor around mid-grey.
        gamma: Gamma applied to the normalised image.
        white_balance: Std of the per-channel colour cast.
        vertical_gradient: Largest relative change of illumination from top to bottom.
        vignette: Relative darkening in the image corners.
        blur_sigma: Std of the Gaussian optical blur, in pixels (0: none).
        noise_std: Std of the Gaussian sensor noise, in 8-bit grey levels (0: none).
        hood_prob: Probability that the ego-vehicle hood is visible at the bottom.
        hood_height: Height of the hood at the image centre, as a fraction of the height.
    """

    horizon: Range
    focal: Range
    camera_height: float
    road_half_width: Range
    sidewalk_width: Range
    verge_prob: float
    building_height: Range
    gap_prob: float
    backdrop_prob: float
    crosswalk_prob: float
    parked_car_prob: float
    cars_mean: float
    large_vehicle_prob: float
    train_prob: float
    persons_mean: float
    riders_mean: float
    trees_mean: float
    poles_mean: float
    colors: tuple[tuple[RGB, ...], ...]
    window_color: RGB
    marking_color: RGB
    color_jitter: float
    side_shade: float
    sky_gradient: float
    texture_coarse: tuple[float, ...]
    texture_fine: tuple[float, ...]
    haze_prob: float
    haze_strength: Range
    haze_distance: float
    haze_color: RGB
    brightness: Range
    contrast: Range
    gamma: Range
    white_balance: float
    vertical_gradient: float
    vignette: float
    blur_sigma: float
    noise_std: float
    hood_prob: float
    hood_height: Range

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_prob") and not 0.0 <= value <= 1.0:
                raise ValueError(f"ToyStyle.{f.name} must be in [0, 1], got {value}")
            if f.type == "Range" and not (len(value) == 2 and 0.0 <= value[0] <= value[1]):
                raise ValueError(f"ToyStyle.{f.name} must be (low, high), 0 <= low <= high")
            if f.type == "float" and value < 0:
                raise ValueError(f"ToyStyle.{f.name} must be >= 0, got {value}")
        for name in ("colors", "texture_coarse", "texture_fine"):
            if len(getattr(self, name)) != NUM_CLASSES:
                raise ValueError(f"ToyStyle.{name} must have one entry per train id (19)")
        # The scene grammar needs room for two lanes and two parking strips, and for
        # people and poles on the sidewalks.
        if self.road_half_width[0] < 3.5 or self.sidewalk_width[0] < 1.0:
            raise ValueError("ToyStyle.road_half_width must be >= 3.5, sidewalk_width >= 1.0")
        if not all(self.colors):
            raise ValueError("ToyStyle.colors needs at least one colour per train id")

    def color(self, train_id: int, rng: np.random.Generator) -> np.ndarray:
        """Pick and jitter the base colour of one object.

        Args:
            train_id: Class of the object (0..18).
            rng: Source of randomness.

        Returns:
            (3,) float32 RGB in 0..255.
        """
        options = self.colors[train_id]
        base = np.asarray(options[rng.integers(len(options))], dtype=np.float32)
        gain = 1.0 + self.color_jitter * (rng.normal() + 0.3 * rng.normal(size=3))
        return np.clip(base * gain, 0.0, 255.0).astype(np.float32)

    def finish(
        self,
        image: np.ndarray,
        label: np.ndarray,
        depth: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Turn a flat render into the style's final image (texture, haze, light, optics).

        Args:
            image: (H, W, 3) float32 flat render in 0..255; modified in place.
            label: (H, W) uint8 train ids (255: ignore), selects the texture of each pixel.
            depth: (H, W) float32 distance along the optical axis in metres (inf: sky).
            rng: Source of randomness.

        Returns:
            (H, W, 3) uint8 RGB image.
        """
        h, w = label.shape
        if any(self.texture_coarse) or any(self.texture_fine):
            coarse = np.zeros(256, np.float32)
            fine = np.zeros(256, np.float32)
            coarse[:NUM_CLASSES], fine[:NUM_CLASSES] = self.texture_coarse, self.texture_fine
            blotches = 0.6 * _smooth_noise(rng, h, w, 16) + 0.4 * _smooth_noise(rng, h, w, 3)
            grain = rng.standard_normal((h, w), dtype=np.float32)
            image *= (1.0 + coarse[label] * blotches + fine[label] * grain)[..., None]
        if rng.random() < self.haze_prob:
            opacity = rng.uniform(*self.haze_strength) * -np.expm1(-depth / self.haze_distance)
            image += opacity[..., None] * (np.asarray(self.haze_color, np.float32) - image)
        image = 255.0 * (np.clip(image, 0.0, 255.0) / 255.0) ** rng.uniform(*self.gamma)
        image = (image - 128.0) * rng.uniform(*self.contrast) + 128.0
        rows = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None]
        cols = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :]
        light = rng.uniform(*self.brightness) * (
            1.0 + rng.uniform(-1.0, 1.0) * self.vertical_gradient * rows / 2.0
        )
        light = light * (1.0 - self.vignette * (rows**2 + cols**2) / 2.0)
        cast = 1.0 + self.white_balance * rng.standard_normal(3).astype(np.float32)
        image = image * light[..., None] * cast
        if self.blur_sigma > 0:
            image = _gaussian_blur(image, self.blur_sigma)
        if self.noise_std > 0:
            image += rng.normal(0.0, self.noise_std, image.shape).astype(np.float32)
        return np.clip(image + 0.5, 0.0, 255.0).astype(np.uint8)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """(h, w) float32 value noise: unit normals on a grid of ``cell`` pixels, bilinear."""
    grid = rng.standard_normal((h // cell + 2, w // cell + 2), dtype=np.float32)
    y, x = np.arange(h, dtype=np.float32) / cell, np.arange(w, dtype=np.float32) / cell
    y0, x0 = y.astype(np.intp), x.astype(np.intp)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an (H, W, 3) float image with edge padding."""
    radius = max(1, int(np.ceil(2.5 * sigma)))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).astype(np.float32)
    kernel /= kernel.sum()
    h, w = image.shape[:2]
    padded = np.pad(image, ((radius, radius), (radius, radius), (0, 0)), mode="edge")
    rows = sum(k * padded[i : i + h] for i, k in enumerate(kernel))  # (H, W + 2r, 3)
    return sum(k * rows[:, i : i + w] for i, k in enumerate(kernel))  # (H, W, 3)


def _per_class(values: Mapping[str, _T], default: _T | None = None) -> tuple[_T, ...]:
    """Order a {class name: value} table by train id; names use '_' for spaces."""
    keys = [name.replace(" ", "_") for name in CLASS_NAMES]
    unknown, missing = set(values) - set(keys), set(keys) - set(values)
    if unknown or (missing and default is None):
        raise KeyError(f"per-class table: unknown {sorted(unknown)}, missing {sorted(missing)}")
    return tuple(values[key] if key in values else cast(_T, default) for key in keys)


# Game-like: brighter, more saturated and cleaner versions of each material.
_SOURCE_COLORS = {
    "road": ((88, 86, 104), (100, 96, 112)),
    "sidewalk": ((190, 165, 150), (200, 180, 160)),
    "building": (
        (200, 150, 110),
        (225, 205, 160),
        (150, 165, 200),
        (190, 110, 95),
        (170, 170, 175),
    ),
    "wall": ((190, 175, 135), (165, 150, 125)),
    "fence": ((150, 115, 70), (110, 130, 110)),
    "pole": ((125, 128, 140),),
    "traffic_light": ((45, 48, 60),),
    "traffic_sign": ((225, 40, 45), (40, 95, 215), (245, 205, 40)),
    "vegetation": ((70, 160, 55), (95, 175, 65)),
    "terrain": ((150, 190, 80), (165, 180, 75)),
    "sky": ((110, 170, 245), (135, 190, 245)),
    "person": (
        (210, 50, 50),
        (50, 90, 200),
        (235, 195, 60),
        (55, 160, 90),
        (60, 60, 70),
        (200, 200, 200),
    ),
    "rider": ((235, 125, 35), (40, 180, 180), (60, 60, 70)),
    "car": (
        (200, 40, 40),
        (40, 80, 190),
        (235, 235, 235),
        (40, 40, 46),
        (240, 195, 40),
        (150, 150, 155),
    ),
    "truck": ((235, 235, 230), (225, 125, 40)),
    "bus": ((240, 195, 40), (210, 50, 50)),
    "train": ((50, 190, 190), (220, 60, 50)),
    "motorcycle": ((195, 40, 40), (40, 40, 48)),
    "bicycle": ((40, 185, 120), (230, 110, 30), (40, 40, 48)),
}

# The same materials in a city photographed on an overcast day: greyer road and pavements,
# muted facades, olive foliage, pale sky, mostly achromatic cars and clothes.
_PHOTO_COLORS = {
    "road": ((100, 96, 100), (110, 106, 108), (90, 88, 94)),
    "sidewalk": ((160, 148, 140), (145, 138, 132)),
    "building": (
        (165, 140, 120),
        (190, 180, 160),
        (130, 135, 150),
        (150, 110, 100),
        (140, 138, 136),
        (110, 105, 100),
    ),
    "wall": ((155, 145, 125), (135, 128, 118)),
    "fence": ((125, 105, 80), (95, 105, 95)),
    "pole": ((100, 102, 108), (80, 82, 86)),
    "traffic_light": ((36, 36, 40),),
    "traffic_sign": ((200, 55, 55), (50, 85, 170), (225, 195, 70), (225, 225, 220)),
    "vegetation": ((80, 115, 55), (65, 95, 50), (100, 125, 65)),
    "terrain": ((130, 145, 85), (140, 135, 90)),
    "sky": ((175, 195, 225), (200, 210, 225), (215, 218, 222)),
    "person": (
        (50, 50, 58),
        (80, 80, 92),
        (120, 105, 90),
        (50, 65, 100),
        (160, 150, 140),
        (140, 50, 50),
    ),
    "rider": ((60, 60, 64), (100, 100, 120), (170, 100, 50)),
    "car": (
        (45, 45, 50),
        (145, 147, 152),
        (205, 205, 208),
        (75, 80, 95),
        (120, 45, 45),
        (175, 175, 165),
    ),
    "truck": ((215, 215, 210), (140, 140, 132), (190, 120, 60)),
    "bus": ((225, 225, 218), (195, 175, 70)),
    "train": ((195, 70, 60), (230, 230, 225)),
    "motorcycle": ((38, 38, 40), (70, 70, 80), (150, 50, 50)),
    "bicycle": ((45, 45, 48), (80, 90, 110)),
}


def _toward(
    start: tuple[tuple[RGB, ...], ...], end: tuple[tuple[RGB, ...], ...], amount: float
) -> tuple[tuple[RGB, ...], ...]:
    """Per-class candidate colours moved ``amount`` of the way from ``start`` to ``end``;
    the k-th colour of a class in ``end`` pairs with the k-th in ``start``, cycling."""

    def move(old: RGB, new: RGB) -> RGB:
        r, g, b = (round(x + amount * (y - x)) for x, y in zip(old, new, strict=True))
        return r, g, b

    return tuple(
        tuple(move(old[k % len(old)], new) for k, new in enumerate(ends))
        for old, ends in zip(start, end, strict=True)
    )


SOURCE_STYLE = ToyStyle(
    horizon=(0.42, 0.52),
    focal=(0.68, 0.8),
    camera_height=1.6,
    road_half_width=(4.5, 6.5),
    sidewalk_width=(3.0, 5.0),
    verge_prob=0.3,
    building_height=(7.0, 24.0),
    gap_prob=0.25,
    backdrop_prob=0.6,
    crosswalk_prob=0.3,
    parked_car_prob=0.3,
    cars_mean=3.0,
    large_vehicle_prob=0.15,
    train_prob=0.04,
    persons_mean=4.0,
    riders_mean=0.8,
    trees_mean=4.0,
    poles_mean=4.0,
    colors=_per_class(_SOURCE_COLORS),
    window_color=(120, 190, 240),
    marking_color=(250, 250, 250),
    color_jitter=0.06,
    side_shade=0.72,
    sky_gradient=0.0,
    texture_coarse=(0.0,) * NUM_CLASSES,
    texture_fine=(0.0,) * NUM_CLASSES,
    haze_prob=0.0,
    haze_strength=(0.0, 0.0),
    haze_distance=60.0,
    haze_color=(200, 205, 210),
    brightness=(1.0, 1.0),
    contrast=(1.0, 1.0),
    gamma=(1.0, 1.0),
    white_balance=0.0,
    vertical_gradient=0.0,
    vignette=0.0,
    blur_sigma=0.0,
    noise_std=0.0,
    hood_prob=0.0,
    hood_height=(0.0, 0.0),
)
"""Game-like domain (GTA5 stand-in): flat shading, hard edges, saturated colours."""

TARGET_STYLE = ToyStyle(
    horizon=(0.36, 0.46),
    focal=(0.78, 0.92),
    camera_height=1.3,
    road_half_width=(4.2, 5.5),
    sidewalk_width=(2.5, 4.5),
    verge_prob=0.45,
    building_height=(10.0, 25.0),
    gap_prob=0.3,
    backdrop_prob=0.7,
    crosswalk_prob=0.2,
    parked_car_prob=0.4,
    cars_mean=2.0,
    large_vehicle_prob=0.1,
    train_prob=0.04,
    persons_mean=6.0,
    riders_mean=1.2,
    trees_mean=6.0,
    poles_mean=5.0,
    colors=_toward(_per_class(_SOURCE_COLORS), _per_class(_PHOTO_COLORS), 0.3),
    window_color=(62, 70, 80),
    marking_color=(200, 200, 194),
    color_jitter=0.1,
    side_shade=0.82,
    sky_gradient=0.5,
    texture_coarse=_per_class(
        {
            "road": 0.05,
            "sidewalk": 0.06,
            "building": 0.1,
            "wall": 0.1,
            "vegetation": 0.22,
            "terrain": 0.12,
            "sky": 0.04,
        },
        default=0.02,
    ),
    texture_fine=_per_class(
        {
            "road": 0.07,
            "sidewalk": 0.05,
            "building": 0.03,
            "wall": 0.05,
            "vegetation": 0.18,
            "terrain": 0.12,
            "sky": 0.0,
        },
        default=0.02,
    ),
    haze_prob=0.3,
    haze_strength=(0.15, 0.5),
    haze_distance=60.0,
    haze_color=(200, 205, 210),
    brightness=(0.85, 1.1),
    contrast=(0.85, 1.05),
    gamma=(0.9, 1.15),
    white_balance=0.03,
    vertical_gradient=0.2,
    vignette=0.25,
    blur_sigma=0.5,
    noise_std=3.0,
    hood_prob=0.7,
    hood_height=(0.08, 0.14),
)
"""Photo-like domain (Cityscapes stand-in): muted palette, texture, haze, light, blur, noise."""
