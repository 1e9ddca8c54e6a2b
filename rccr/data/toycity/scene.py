"""Toy city, part 2: the scene grammar, what a street holds and where.

A straight street seen from a car: road with lanes and markings, kerbs, sidewalks, grass
verges, house fronts with windows, walls, fences and hedges in the gaps, poles with
traffic lights, signs and lamps, trees, pedestrians, cyclists, parked and moving cars,
trucks, buses and trams. The layout statistics (how wide, how busy) come from the style,
so the two domains differ a little in layout as well as in appearance.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np

from rccr.data.toycity.canvas import (
    BICYCLE,
    BUILDING,
    BUS,
    CAR,
    FENCE,
    HAIR,
    HEAD,
    LAMPS,
    LIGHT,
    MOTORCYCLE,
    PARKING,
    PERSON,
    POLE,
    RIDER,
    SIGN,
    SKIN,
    TAIL,
    TRAIN,
    TRUCK,
    TRUNK,
    TYRE,
    VEGETATION,
    WALL,
    WHITE,
    Canvas,
    Detail,
    Item,
    Street,
)
from rccr.data.toycity.style import ToyStyle

__all__ = ["render_scene"]


def _layout(sc: Canvas) -> Street:
    rng, style = sc.rng, sc.style
    half = rng.uniform(*style.road_half_width)
    # The camera drives in the right-hand lane, between the two parking strips.
    center = -(half - PARKING) / 2 + rng.normal(0.0, 0.2)
    walks = (rng.uniform(*style.sidewalk_width), rng.uniform(*style.sidewalk_width))
    verges = [rng.uniform(1.0, 4.0) if rng.random() < style.verge_prob else 0.0 for _ in "lr"]
    z_far = rng.uniform(50.0, 120.0) if rng.random() < style.backdrop_prob else 250.0
    crosswalk = sc.z_near + rng.uniform(2.0, 25.0) if rng.random() < style.crosswalk_prob else None
    street = Street(center, half, walks, (verges[0], verges[1]), z_far, crosswalk, [])
    for side in (-1, 1):
        if rng.random() < 0.25:  # a grass strip between kerb and sidewalk
            z0 = sc.z_near + rng.uniform(0.0, 25.0)
            a, b = sorted((side * (half + 0.3), side * (half + 1.3)))
            street.patches.append((a, b, z0, z0 + rng.uniform(8.0, 40.0)))
    return street


def _windows(sc: Canvas, height: float) -> Detail:
    floor, pitch = sc.rng.uniform(2.8, 3.6), sc.rng.uniform(2.0, 3.4)
    width, tall, focal = sc.rng.uniform(0.35, 0.6) * pitch, sc.rng.uniform(0.4, 0.6) * floor, sc.f

    def where(u: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        in_floor = y % floor
        # Windows under ~1.5 px would alias into moire, so far facades stay plain.
        return (
            (u % pitch < width)
            & (in_floor > floor - 0.4 - tall)
            & (in_floor < floor - 0.4)
            & (y > 0.8 * floor)
            & (y < height - 0.6)
            & (width * focal > 1.5 * z)
        )

    return where, sc.style.window_color


def _building(sc: Canvas, x: float, z0: float, z1: float) -> None:
    height, color = sc.rng.uniform(*sc.style.building_height), sc.color(BUILDING)
    windows = (_windows(sc, height),)
    # The end wall at z0 shows wherever the nearer house is lower or absent.
    x0, x1 = sorted((x, x + np.sign(x) * 12.0))
    sc.front_plane(z0, x0, x1, 0.0, height, BUILDING, color * sc.style.side_shade, windows)
    sc.side_plane(x, z0, z1, 0.0, height, BUILDING, color, windows)


def _backdrop(sc: Canvas, z: float, x0: float, x1: float) -> None:
    height = sc.rng.uniform(8.0, 35.0)
    sc.front_plane(z, x0, x1, 0.0, height, BUILDING, sc.color(BUILDING), (_windows(sc, height),))


def _frontage(sc: Canvas, x: float, z0: float, z1: float, cls: int) -> None:
    """A wall (with a coping), a fence (mesh between posts and rails) or a hedge."""
    height, color = sc.rng.uniform(0.9, 2.6), sc.color(cls)
    details: tuple[Detail, ...] = ()
    if cls == WALL:
        details = ((lambda u, y, z: y > height - 0.15, np.minimum(color * 1.2, 255.0)),)
    elif cls == FENCE:
        details = ((lambda u, y, z: (u % 2.5 > 0.12) & (y < height - 0.12) & (y > 0.15), None),)
    sc.side_plane(x, z0, z1, 0.0, height, cls, color, details)


def _tree(sc: Canvas, x: float, z: float) -> None:
    s, (xg, yg) = sc.f / z, sc.project(x, 0.0, z)  # s: pixels per metre at this depth
    height = sc.rng.uniform(4.5, 10.0)
    radius = sc.rng.uniform(0.25, 0.4) * height * s
    sc.rect(xg - 0.15 * s, yg - 0.6 * height * s, xg + 0.15 * s, yg, VEGETATION, TRUNK, z)
    color, cy = sc.color(VEGETATION), yg - height * s + radius
    for dx, dy, k in ((0.0, 0.0, 1.0), (-0.55, 0.35, 0.75), (0.55, 0.3, 0.75)):
        center = (xg + dx * radius, cy + dy * radius)
        sc.ellipse(*center, k * radius, 1.1 * k * radius, VEGETATION, color, z)


def _pole(sc: Canvas, x: float, z: float, toward_road: int, kind: int) -> None:
    """A pole carrying a traffic light (kind LIGHT), a sign (SIGN) or a lamp (POLE)."""
    rng, s, (xg, yg) = sc.rng, sc.f / z, sc.project(x, 0.0, z)
    height = {LIGHT: rng.uniform(3.2, 4.5), SIGN: rng.uniform(2.2, 3.0)}.get(kind, 8.0)
    top, head, color = yg - height * s, xg, sc.color(POLE)
    sc.rect(xg - 0.07 * s, top, xg + 0.07 * s, yg, POLE, color, z)
    if kind == POLE or (kind == LIGHT and rng.random() < 0.4):  # an arm over the road
        head = xg + toward_road * rng.uniform(1.5, 4.0) * s
        sc.rect(min(xg, head), top, max(xg, head), top + 0.12 * s, POLE, color, z)
    if kind == LIGHT:
        sc.rect(head - 0.18 * s, top, head + 0.18 * s, top + 0.95 * s, LIGHT, sc.color(LIGHT), z)
        lit = rng.integers(3)
        for i, lamp in enumerate(LAMPS):
            glow = np.asarray(lamp, np.float32) * (1.0 if i == lit else 0.3)
            sc.ellipse(head, top + (0.18 + 0.3 * i) * s, 0.11 * s, 0.11 * s, LIGHT, glow, z)
    elif kind == SIGN:
        size, plate, shape = rng.uniform(0.6, 0.9) * s, sc.color(SIGN), rng.integers(3)
        cy = top + size / 2
        if shape == 0:
            sc.ellipse(xg, cy, size / 2, size / 2, SIGN, plate, z)
            sc.ellipse(xg, cy, size / 3, size / 3, SIGN, WHITE, z)
        elif shape == 1:
            sc.poly([(xg - size / 2, top), (xg + size / 2, top), (xg, top + size)], SIGN, plate, z)
        else:
            sc.rect(xg - size / 2, top, xg + size / 2, top + size, SIGN, plate, z)
            sc.rect(xg - size / 4, cy - size / 4, xg + size / 4, cy + size / 4, SIGN, WHITE, z)
    else:
        sc.rect(head - 0.35 * s, top, head + 0.35 * s, top + 0.2 * s, POLE, WHITE, z)


def _person(sc: Canvas, x: float, z: float) -> None:
    s, (xg, yg) = sc.f / z * sc.rng.uniform(0.9, 1.1), sc.project(x, 0.0, z)
    trousers, shirt = sc.color(PERSON), sc.color(PERSON)
    limbs = ((-0.16, 0.0, -0.02, 0.86), (0.02, 0.0, 0.16, 0.86))
    arms = ((-0.31, 0.82, -0.21, 1.42), (0.21, 0.82, 0.31, 1.42))
    for (u0, v0, u1, v1), color in [(leg, trousers) for leg in limbs] + [(a, shirt) for a in arms]:
        sc.rect(xg + u0 * s, yg - v1 * s, xg + u1 * s, yg - v0 * s, PERSON, color, z)
    torso = ((-0.2, 0.84), (0.2, 0.84), (0.23, 1.46), (-0.23, 1.46))
    sc.poly([(xg + u * s, yg - v * s) for u, v in torso], PERSON, shirt, z)
    sc.ellipse(xg, yg - 1.6 * s, 0.1 * s, 0.13 * s, PERSON, SKIN, z)
    sc.ellipse(xg, yg - 1.68 * s, 0.1 * s, 0.06 * s, PERSON, HAIR, z)


def _two_wheeler(sc: Canvas, x: float, z: float, cls: int, ridden: bool) -> None:
    """A bicycle or motorcycle seen from the side, with or without its rider."""
    s, (xg, yg) = sc.f / z, sc.project(x, 0.0, z)
    d = s if sc.rng.random() < 0.5 else -s  # facing right or left

    def pts(*uv: tuple[float, float]) -> list[tuple[float, float]]:
        return [(xg + u * d, yg - v * s) for u, v in uv]

    color = sc.color(cls)
    r, half = (0.31, 0.68) if cls == MOTORCYCLE else (0.34, 0.52)
    for u in (-half, half):
        sc.ellipse(xg + u * d, yg - r * s, r * s, r * s, cls, TYRE, z)
        sc.ellipse(xg + u * d, yg - r * s, 0.4 * r * s, 0.4 * r * s, cls, color, z)
    if cls == MOTORCYCLE:
        sc.poly(
            pts((-0.55, 0.45), (-0.25, 0.88), (0.4, 0.92), (0.6, 0.55), (0.2, 0.3)), cls, color, z
        )
    else:
        sc.poly(pts((-0.15, 0.92), (0.42, 0.98), (0.02, 0.3)), cls, color, z)
        sc.poly(pts((-half, r), (-0.15, 0.92), (0.02, 0.3)), cls, color, z)
    if ridden:
        clothes, trousers = sc.color(RIDER), sc.color(RIDER)
        sc.poly(pts((-0.25, 0.95), (0.0, 0.95), (0.1, 0.35), (-0.02, 0.3)), RIDER, trousers, z)
        sc.poly(pts((-0.3, 0.9), (0.0, 0.9), (0.2, 1.5), (-0.05, 1.55)), RIDER, clothes, z)
        sc.poly(pts((0.1, 1.45), (0.2, 1.45), (0.42, 1.0), (0.35, 0.95)), RIDER, clothes, z)
        sc.ellipse(xg + 0.1 * d, yg - 1.68 * s, 0.12 * s, 0.13 * s, RIDER, SKIN, z)


def _box(
    sc: Canvas,
    x: float,
    z: float,
    w: float,
    length: float,
    y0: float,
    y1: float,
    cls: int,
    color: np.ndarray,
    side: Sequence[Detail] = (),
    near: Sequence[Detail] = (),
) -> None:
    """A box along the street with its near face at depth z, drawn far to near: top (when
    below the camera), the side facing the camera's lane, near face."""
    xl, xr = x - w / 2, x + w / 2
    if y1 < sc.cam_h:
        top = [(xl, z), (xr, z), (xr, z + length), (xl, z + length)]
        sc.poly([sc.project(u, y1, v) for u, v in top], cls, np.minimum(color * 1.12, 255.0), z)
    if xr < 0 or xl > 0:
        shade = color * sc.style.side_shade
        sc.side_plane(xr if xr < 0 else xl, z, z + length, y0, y1, cls, shade, side)
    sc.front_plane(z, xl, xr, y0, y1, cls, color, near)


def _wheels(length: float, radius: float, axle: float) -> Detail:
    """Two wheels on a vehicle's side, ``axle`` in from either end."""

    def where(u: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        along = np.minimum(np.abs(u - axle), np.abs(u - length + axle))
        return along**2 + (y - radius) ** 2 < radius**2

    return where, TYRE


def _vehicle(sc: Canvas, x: float, z: float, cls: int, oncoming: bool) -> None:
    """A car, truck, bus or tram along the street; ``oncoming`` shows its front."""
    rng, color, glass = sc.rng, sc.color(cls), sc.style.window_color
    w = {CAR: rng.uniform(1.7, 1.9), TRAIN: 2.65}.get(cls, 2.5)
    length = {CAR: rng.uniform(3.9, 4.7), TRUCK: rng.uniform(6.0, 8.0), BUS: 12.0}.get(cls, 26.0)
    body = {CAR: rng.uniform(0.75, 0.9), TRUCK: rng.uniform(3.2, 3.8), BUS: 3.1}.get(cls, 3.4)
    low = 0.3 if cls == CAR else 0.45
    lamps = HEAD if oncoming else TAIL
    near: list[Detail] = [
        (lambda u, y, z: (y < low) & ((u < 0.35) | (u > w - 0.35)), TYRE),
        (lambda u, y, z: (y > low + 0.2) & (y < low + 0.4) & ((u < 0.3) | (u > w - 0.3)), lamps),
    ]
    side = [_wheels(length, low, 0.85 if cls == CAR else 1.4)]
    if cls in (BUS, TRAIN):
        side.append((lambda u, y, z: (y > 1.2) & (y < body - 0.5) & (u % 1.6 > 0.15), glass))
        near.append(
            (lambda u, y, z: (y > 1.4) & (y < body - 0.4) & (u > 0.2) & (u < w - 0.2), glass)
        )
    if cls == TRUCK:  # a cab ahead of the cargo box, in front when the truck comes our way
        cab = [(lambda u, y, z: (y > 1.6) & (y < 2.5) & (u > 0.2) & (u < w - 0.4), glass)]
        cab_z, box_z = (z, z + 2.5) if oncoming else (z + length + 0.3, z)
        parts: list[tuple[float, float, float, Sequence[Detail]]]
        parts = [(cab_z, 2.2, 2.9, cab), (box_z, length, body, near)]
        for part_z, part_length, part_top, part_near in sorted(parts, key=lambda p: -p[0]):
            _box(sc, x, part_z, w, part_length, 0.0, part_top, cls, color, side, part_near)
        return
    _box(sc, x, z, w, length, 0.0, body, cls, color, side, near)
    if cls == CAR:  # the cabin stands on the body, set back from its near end
        cab0, cab1 = z + rng.uniform(0.9, 1.4), z + length - rng.uniform(0.9, 1.3)
        roof, cw = rng.uniform(1.35, 1.55), w - 0.24

        def pane(u: np.ndarray, y: np.ndarray, width: float) -> np.ndarray:
            return (u > 0.12) & (u < width - 0.12) & (y > body + 0.08) & (y < roof - 0.08)

        windows = (lambda u, y, z: pane(u, y, cab1 - cab0), glass)
        rear = (lambda u, y, z: pane(u, y, cw), glass)
        _box(sc, x, cab0, cw, cab1 - cab0, body, roof, cls, color, [windows], [rear])


def _street_front(sc: Canvas, st: Street) -> list[Item]:
    """Houses along both house lines, a wall, fence or hedge in each gap, and the houses
    that close the street."""
    rng, items = sc.rng, list[Item]()
    for side in (-1, 1):
        x, z = st.x(side, st.line(side)), 2.0
        while z < st.z_far:
            z1 = min(z + rng.uniform(6.0, 22.0), st.z_far)
            if rng.random() < sc.style.gap_prob:
                cls = (WALL, FENCE, VEGETATION)[rng.integers(3)]
                if rng.random() < 0.5:  # a tree in the yard behind
                    items.append(((z + z1) / 2, partial(_tree, sc, x + side * 2.5, (z + z1) / 2)))
                items.append((z, partial(_frontage, sc, x - side * 0.2, z, z1, cls)))
            else:
                items.append((z, partial(_building, sc, x, z, z1)))
            z = z1
    if st.z_far < 250.0:
        x, end = st.x(-1, st.line(-1) + 20.0), st.x(1, st.line(1) + 20.0)
        while x < end:
            width = rng.uniform(6.0, 16.0)
            items.append((st.z_far, partial(_backdrop, sc, st.z_far, x, x + width)))
            x += width
    return items


def _street_objects(sc: Canvas, st: Street) -> list[Item]:
    """Parked and moving vehicles, cyclists, pedestrians, trees and poles."""
    rng, style, near, items = sc.rng, sc.style, sc.z_near, list[Item]()

    def spot(lo: float, hi: float) -> tuple[int, float]:
        # Log-uniform depth: as many objects per image row near as far away.
        return (1 if rng.random() < 0.5 else -1), lo * (hi / lo) ** rng.random()

    for side in (-1, 1):
        x, z = st.x(side, st.half - PARKING / 2), near * 0.6 + rng.uniform(0.0, 6.0)
        while z < 70.0:
            if rng.random() < style.parked_car_prob:
                items.append((z, partial(_vehicle, sc, x, z, CAR, side < 0)))
                z += 4.8
            z += rng.uniform(0.5, 6.0)
    traffic = [TRAIN] if rng.random() < style.train_prob else []
    for _ in range(rng.poisson(style.cars_mean)):
        big = rng.random() < style.large_vehicle_prob
        traffic.append((TRUCK, BUS)[rng.integers(2)] if big else CAR)
    for _ in range(rng.poisson(style.riders_mean)):
        traffic.append(MOTORCYCLE if rng.random() < 0.4 else BICYCLE)
    lane = (st.half - PARKING) / 2  # offset of both driving lanes' centres
    busy: dict[int, list[tuple[float, float]]] = {-1: [], 1: []}  # taken depths per lane
    for cls in traffic:
        length = {CAR: 5.0, TRUCK: 11.0, BUS: 12.5, TRAIN: 27.0}.get(cls, 2.0)
        for _ in range(4):  # a few tries to find a free stretch of road
            way, z = spot(near + 1.0, 70.0)
            ways = (-1, 1) if cls == TRAIN else (way,)
            if all(z + length + 2 < a or z > b + 2 for w in ways for a, b in busy[w]):
                for w in ways:
                    busy[w].append((z, z + length))
                if cls in (BICYCLE, MOTORCYCLE):
                    x = st.x(way, lane + 0.6)
                    items.append((z, partial(_two_wheeler, sc, x, z, cls, True)))
                else:
                    x = st.center if cls == TRAIN else st.x(way, lane)
                    items.append((z, partial(_vehicle, sc, x, z, cls, way < 0)))
                break
    for _ in range(rng.poisson(style.persons_mean)):
        side, z = spot(0.8 * near, 60.0)
        offset = st.half + rng.uniform(0.5, st.sidewalk[side > 0] - 0.3)
        if st.crosswalk is not None and rng.random() < 0.3:
            offset, z = rng.uniform(0.0, st.half - 0.5), st.crosswalk + rng.uniform(0.5, 2.5)
        items.append((z, partial(_person, sc, st.x(side, offset), z)))
    for _ in range(rng.poisson(style.riders_mean / 2)):  # parked bicycles
        side, z = spot(near, 40.0)
        x = st.x(side, st.half + st.sidewalk[side > 0] - 0.4)
        items.append((z, partial(_two_wheeler, sc, x, z, BICYCLE, False)))
    for _ in range(rng.poisson(style.trees_mean)):
        side, z = spot(0.8 * near, 70.0)
        offset = st.half + st.sidewalk[side > 0] * rng.uniform(0.6, 0.85)
        if st.verge[side > 0] > 0 and rng.random() < 0.5:
            offset = st.half + st.sidewalk[side > 0] + st.verge[side > 0] / 2
        else:  # a tree pit in the sidewalk
            a, b = sorted((side * (offset - 0.6), side * (offset + 0.6)))
            st.patches.append((a, b, z - 0.6, z + 0.6))
        items.append((z, partial(_tree, sc, st.x(side, offset), z)))
    for _ in range(rng.poisson(style.poles_mean)):
        side, z = spot(near, 60.0)
        kind = (LIGHT, SIGN, POLE)[rng.choice(3, p=(0.4, 0.4, 0.2))]
        items.append((z, partial(_pole, sc, st.x(side, st.half + 0.45), z, -side, kind)))
    return items


def render_scene(
    rng: np.random.Generator, style: ToyStyle, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one random street scene and its exact label map.

    Args:
        rng: The only source of randomness: the same generator state gives the same scene.
        style: Domain to draw in (``SOURCE_STYLE``, ``TARGET_STYLE`` or a variant).
        width: Image width in pixels.
        height: Image height in pixels.

    Returns:
        ``(image, label)``: (H, W, 3) uint8 RGB image and (H, W) uint8 train ids 0..18;
        the ego-vehicle hood, the only ignored region, is 255.

    Raises:
        ValueError: if the size is not positive.
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    sc = Canvas(rng, style, width, height)
    street = _layout(sc)
    houses, things = _street_front(sc, street), _street_objects(sc, street)
    sc.sky()
    sc.ground(street)
    # The house lines are farther out than anything on the street, so they go first.
    for items in (houses, things):
        for _, draw in sorted(items, key=lambda item: -item[0]):
            draw()
    if rng.random() < style.hood_prob:
        sc.hood()
    return style.finish(sc.image, sc.label, sc.depth, rng), sc.label
