"""Toy city, part 1: the camera and the canvas that street scenes are drawn on.

A pinhole camera at height ``camera_height`` looks along the street (world X to the
right, Y up, Z forward, metres). Every shape is a projected plane, box or sprite, so its
size grows with the image row of its ground contact. Shapes are rasterised by testing
pixel centres against half-planes and ellipses, and painted far to near into the image,
the label map and a depth map (for the haze) together, so the labels are exact.
The scene grammar that decides what to draw is in ``rccr.data.toycity.scene``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rccr.data.labels import IGNORE_INDEX
from rccr.data.toycity.style import ToyStyle

__all__ = ["Canvas", "Color", "Detail", "Item", "Street"]

(ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEGETATION, TERRAIN,
 SKY, PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE) = range(19)  # fmt: skip

SKIN, HAIR, TYRE, TRUNK = (210, 168, 140), (56, 40, 30), (26, 26, 30), (96, 70, 50)
LAMPS = ((235, 40, 30), (245, 170, 20), (40, 225, 90))
TAIL, HEAD, WHITE, HOOD = (200, 24, 24), (250, 245, 220), (240, 240, 240), (30, 32, 38)
PARKING = 2.2  # width of the parking strip along each kerb

Color = np.ndarray | tuple[int, int, int]
Detail = tuple[Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray], Color | None]
"""(where(u, y, z) -> mask in a plane's own coordinates, colour there; None: see-through)."""
Item = tuple[float, Callable[[], None]]
"""(depth of the nearest point, draw): drawn far to near."""
_Grid = tuple[tuple[slice, slice], np.ndarray, np.ndarray]


class Canvas:
    """Camera, canvases (image, label, depth) and randomness of one image being drawn."""

    def __init__(self, rng: np.random.Generator, style: ToyStyle, width: int, height: int):
        self.rng, self.style, self.w, self.h = rng, style, width, height
        self.f = rng.uniform(*style.focal) * width
        self.cam_h = style.camera_height
        self.yh = rng.uniform(*style.horizon) * height
        self.xv = width * (0.5 + rng.normal(0.0, 0.03))
        self.z_near = self.f * self.cam_h / (height - self.yh)  # ground in the last row
        self.image = np.zeros((height, width, 3), np.float32)
        self.label = np.full((height, width), SKY, np.uint8)
        self.depth = np.full((height, width), np.inf, np.float32)

    def color(self, train_id: int) -> np.ndarray:
        return self.style.color(train_id, self.rng)

    def project(self, x: float, y: float, z: float) -> tuple[float, float]:
        return self.xv + self.f * x / z, self.yh + self.f * (self.cam_h - y) / z

    def _grid(self, x0: float, y0: float, x1: float, y1: float) -> _Grid | None:
        """The pixel box that may hold a shape, and its pixel centres (1, w) and (h, 1)."""
        c0, c1 = int(max(np.floor(x0), 0)), int(min(np.ceil(x1), self.w))
        r0, r1 = int(max(np.floor(y0), 0)), int(min(np.ceil(y1), self.h))
        if c0 >= c1 or r0 >= r1:
            return None
        xs = np.arange(c0, c1, dtype=np.float32)[None, :] + 0.5
        ys = np.arange(r0, r1, dtype=np.float32)[:, None] + 0.5
        return (slice(r0, r1), slice(c0, c1)), xs, ys

    def paint(
        self,
        box: tuple[slice, slice],
        mask: np.ndarray,
        cls: int,
        color: Color,
        depth: float | np.ndarray,
    ) -> None:
        """Write one shape into label, image and depth (colour (3,) or (h, w, 3))."""
        self.label[box][mask] = cls
        self.image[box][mask] = color if np.ndim(color) == 1 else np.asarray(color)[mask]
        self.depth[box][mask] = depth if np.ndim(depth) == 0 else np.asarray(depth)[mask]

    def rect(
        self,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        cls: int,
        color: Color,
        z: float,
        details: Sequence[Detail] = (),
        left: float = 0.0,
    ) -> None:
        """Axis-aligned rectangle at depth z; ``details`` see it as a plane facing the
        camera whose left edge is at lateral ``left``."""
        # Thin far-away parts (poles, arms) stay one pixel wide instead of vanishing.
        if x1 - x0 < 1.0:
            x0, x1 = (x0 + x1 - 1.0) / 2, (x0 + x1 + 1.0) / 2
        if y1 - y0 < 1.0:
            y0, y1 = (y0 + y1 - 1.0) / 2, (y0 + y1 + 1.0) / 2
        grid = self._grid(x0, y0, x1, y1)
        if grid is None:
            return
        box, xs, ys = grid
        mask = (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
        if details:
            u = (xs - self.xv) * z / self.f - left
            y = self.cam_h - (ys - self.yh) * z / self.f
            color = self._details(box, mask, color, u, y, np.asarray(z, np.float32), details)
        self.paint(box, mask, cls, color, z)

    def ellipse(
        self, cx: float, cy: float, rx: float, ry: float, cls: int, color: Color, z: float
    ) -> None:
        rx, ry = max(rx, 0.6), max(ry, 0.6)
        grid = self._grid(cx - rx, cy - ry, cx + rx, cy + ry)
        if grid is not None:
            box, xs, ys = grid
            self.paint(box, ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0, cls, color, z)

    def poly(self, points: Sequence[tuple[float, float]], cls: int, color: Color, z: float) -> None:
        hit = self._poly_mask(points)
        if hit is not None:
            self.paint(hit[0][0], hit[1], cls, color, z)

    def _poly_mask(self, points: Sequence[tuple[float, float]]) -> tuple[_Grid, np.ndarray] | None:
        """Pixels whose centres lie inside a convex polygon: one half-plane test per edge."""
        pts = np.asarray(points, np.float64)
        nxt = np.roll(pts, -1, axis=0)
        area = np.sum(pts[:, 0] * nxt[:, 1] - nxt[:, 0] * pts[:, 1])  # sign = orientation
        grid = self._grid(*pts.min(axis=0), *pts.max(axis=0))
        if grid is None or area == 0:
            return None
        _, xs, ys = grid
        mask = np.ones((ys.size, xs.size), bool)
        for (ax, ay), (bx, by) in zip(pts, nxt, strict=True):
            mask &= ((bx - ax) * (ys - ay) - (by - ay) * (xs - ax)) * area >= 0
        return grid, mask

    def _details(
        self,
        box: tuple[slice, slice],
        mask: np.ndarray,
        color: Color,
        u: np.ndarray,
        y: np.ndarray,
        z: np.ndarray,
        details: Sequence[Detail],
    ) -> np.ndarray:
        """(h, w, 3) colours of a plane with windows, lights, wheels or see-through mesh."""
        out = np.broadcast_to(np.asarray(color, np.float32), (*mask.shape, 3))
        for where, detail_color in details:
            hit = np.broadcast_to(where(u, y, z), mask.shape)[..., None]
            if detail_color is None:  # what was painted behind shows through
                out = np.where(hit, 0.55 * self.image[box] + 0.3 * out, out)
            else:
                out = np.where(hit, np.asarray(detail_color, np.float32), out)
        return out

    def side_plane(
        self,
        x: float,
        z0: float,
        z1: float,
        y0: float,
        y1: float,
        cls: int,
        color: Color,
        details: Sequence[Detail] = (),
    ) -> None:
        """Vertical plane along the street at lateral x, depths z0..z1, heights y0..y1;
        details see u = depth beyond z0 and y = height."""
        corners = [self.project(x, y, z) for y, z in ((y0, z0), (y1, z0), (y1, z1), (y0, z1))]
        hit = self._poly_mask(corners)
        if hit is None:
            return
        (box, xs, ys), mask = hit
        z = np.broadcast_to(self.f * abs(x) / np.maximum(np.abs(xs - self.xv), 1e-3), mask.shape)
        y = self.cam_h - (ys - self.yh) * z / self.f
        self.paint(box, mask, cls, self._details(box, mask, color, z - z0, y, z, details), z)

    def front_plane(
        self,
        z: float,
        x0: float,
        x1: float,
        y0: float,
        y1: float,
        cls: int,
        color: Color,
        details: Sequence[Detail] = (),
    ) -> None:
        """Vertical plane facing the camera at depth z, lateral x0..x1, heights y0..y1;
        details see u = lateral offset from x0 and y = height."""
        (px0, py1), (px1, py0) = self.project(x0, y0, z), self.project(x1, y1, z)
        self.rect(px0, py0, px1, py1, cls, color, z, details, left=x0)

    def sky(self) -> None:
        base = self.color(SKY)
        rows = (np.arange(self.h, dtype=np.float32) + 0.5) / max(self.yh, 1.0)
        toward_horizon = np.clip(rows, 0.0, 1.0)[:, None] ** 2  # (H, 1)
        self.image[:] = (base + self.style.sky_gradient * toward_horizon * (255.0 - base))[:, None]

    def ground(self, st: Street) -> None:
        """Road, markings, kerbs, sidewalks and verges, from each pixel's ground point."""
        r0 = min(int(self.yh) + 1, self.h)
        ys = np.arange(r0, self.h, dtype=np.float32)[:, None] + 0.5
        xs = np.arange(self.w, dtype=np.float32)[None, :] + 0.5
        z = np.broadcast_to(self.f * self.cam_h / (ys - self.yh), (ys.size, self.w))
        rel = (xs - self.xv) * z / self.f - st.center  # (h, W) lateral offset from road axis
        off, right = np.abs(rel), rel > 0
        walk = st.half + np.where(right, st.sidewalk[1], st.sidewalk[0])
        verge = np.where(right, st.verge[1], st.verge[0]) > 0
        label = np.where(off < walk, SIDEWALK, np.where(verge, TERRAIN, SIDEWALK))
        label = np.where(off < st.half, ROAD, label).astype(np.uint8)
        for a, b, z0, z1 in st.patches:
            label[(rel >= a) & (rel < b) & (z >= z0) & (z < z1) & (label == SIDEWALK)] = TERRAIN
        table = np.zeros((BICYCLE + 1, 3), np.float32)
        for cls in (ROAD, SIDEWALK, TERRAIN):
            table[cls] = self.color(cls)
        image = table[label]
        image[(off - st.half < 0.25) & (label == SIDEWALK)] *= 1.2  # kerb stones
        marks = ((off < 0.07) & (z % 9.0 < 4.5)) | (np.abs(off - st.half + 0.35) < 0.07)
        if st.crosswalk is not None:
            marks |= (z >= st.crosswalk) & (z < st.crosswalk + 3.0) & (rel % 1.0 < 0.5)
        image[marks & (label == ROAD)] = self.style.marking_color
        self.label[r0:], self.image[r0:], self.depth[r0:] = label, np.minimum(image, 255.0), z

    def hood(self) -> None:
        """The ego vehicle's bonnet across the bottom, ignored as in Cityscapes."""
        top = self.h * (1.0 - self.rng.uniform(*self.style.hood_height))
        xs = (np.arange(self.w, dtype=np.float32)[None, :] + 0.5) / self.w * 2.0 - 1.0
        ys = np.arange(self.h, dtype=np.float32)[:, None] + 0.5
        edge = top + 0.5 * (self.h - top) * xs**2  # (1, W): highest in the middle
        shine = 60.0 * np.exp(np.minimum(edge - ys, 0.0) / 2.0)  # reflection along the edge
        color = np.asarray(HOOD, np.float32) + np.broadcast_to(shine, (self.h, self.w))[..., None]
        self.paint((slice(None), slice(None)), ys >= edge, IGNORE_INDEX, color, 0.0)


@dataclass
class Street:
    """Lateral layout of the street. Offsets are from the road axis, sides -1 and +1."""

    center: float  # lateral position of the road axis (the camera is at 0)
    half: float  # half the road width
    sidewalk: tuple[float, float]  # width on the left and on the right
    verge: tuple[float, float]  # grass between sidewalk and houses, 0: none
    z_far: float  # where a row of houses closes the street
    crosswalk: float | None  # depth of a zebra crossing
    patches: list[tuple[float, float, float, float]]  # grass in the sidewalk: rel, rel, z, z

    def x(self, side: int, offset: float) -> float:
        return self.center + side * offset

    def line(self, side: int) -> float:
        """Offset of the house fronts on one side."""
        return self.half + self.sidewalk[side > 0] + self.verge[side > 0]
