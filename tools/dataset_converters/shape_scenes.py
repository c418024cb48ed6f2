"""Synthetic scenes of coloured shapes on textured backgrounds, for the offline demos.

The detection (COCO layout) and segmentation (ADE20K layout) demo generators both draw
from here, so the two demos share one definition of what a scene is. Every scene is a
pure function of its seed: regenerating a dataset reproduces it byte for byte.
"""
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SHAPE_CLASSES = ('circle', 'square', 'triangle')
# Vertices per class; the circle is a polygon fine enough that the rasterised mask and
# the COCO polygon agree to within a pixel.
_VERTICES = {'circle': 40, 'square': 4, 'triangle': 3}


@dataclass(frozen=True)
class Shape:
    """One object of a scene: its class index into SHAPE_CLASSES and its outline."""

    label: int
    polygon: np.ndarray  # (V, 2) float x, y in pixels, inside the image

    @property
    def bbox_xywh(self) -> list[float]:
        x0, y0 = self.polygon.min(axis=0)
        x1, y1 = self.polygon.max(axis=0)
        return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]

    @property
    def area(self) -> float:
        x, y = self.polygon[:, 0], self.polygon[:, 1]
        return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))

    def flat_xy(self) -> list[float]:
        """The outline as COCO writes a polygon: [x0, y0, x1, y1, ...]."""
        return [round(float(v), 2) for v in self.polygon.reshape(-1)]


def regular_polygon(kind: str, center: tuple[float, float], radius: float,
                    angle: float) -> np.ndarray:
    """Vertices of a circle, square or triangle inscribed in the circle (center, radius)."""
    n = _VERTICES[kind]
    theta = angle + 2 * np.pi * np.arange(n) / n
    return np.stack([center[0] + radius * np.cos(theta),
                     center[1] + radius * np.sin(theta)], axis=1)


def textured_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A dull, low-saturation texture (blotches, stripes, grain) as HxWx3 float in [0, 255].

    Shapes are saturated colours, so the texture is clutter a model must learn to ignore,
    not a cue it can copy.
    """
    base = rng.uniform(60, 190) + rng.uniform(-20, 20, size=3)
    coarse = rng.uniform(-1, 1, size=(height // 16 + 2, width // 16 + 2, 3)) * 255
    blotches = np.asarray(
        Image.fromarray(((coarse + 255) / 2).astype(np.uint8)).resize(
            (width, height), Image.BICUBIC), dtype=np.float64) * 2 - 255
    yy, xx = np.mgrid[0:height, 0:width]
    direction = rng.uniform(0, np.pi)
    period = rng.uniform(6, 24)
    stripes = np.sin(2 * np.pi * (xx * np.cos(direction) + yy * np.sin(direction)) / period)
    texture = (base + 0.12 * blotches + rng.uniform(5, 20) * stripes[..., None]
               + rng.normal(0, 6, size=(height, width, 1)))
    return np.clip(texture, 0, 255)


def _saturated_colour(rng: np.random.Generator) -> np.ndarray:
    """A random vivid RGB colour (hue uniform, saturation and value high)."""
    hue = rng.uniform(0, 1)
    hsv = np.array([[[hue * 255, rng.uniform(170, 255), rng.uniform(150, 255)]]], np.uint8)
    return np.asarray(Image.fromarray(hsv, 'HSV').convert('RGB'), np.float64)[0, 0]


def place_shapes(rng: np.random.Generator, height: int, width: int, max_shapes: int,
                 radius_range: tuple[float, float]) -> list[Shape]:
    """1..max_shapes non-overlapping shapes, each fully inside the image."""
    count = int(rng.integers(1, max_shapes + 1))
    shapes, discs = [], []
    for _ in range(50 * count):
        if len(shapes) == count:
            break
        radius = rng.uniform(*radius_range)
        center = (rng.uniform(radius, width - radius), rng.uniform(radius, height - radius))
        if any(np.hypot(center[0] - cx, center[1] - cy) < radius + r + 2
               for cx, cy, r in discs):
            continue
        label = int(rng.integers(len(SHAPE_CLASSES)))
        polygon = regular_polygon(SHAPE_CLASSES[label], center, radius, rng.uniform(0, 2 * np.pi))
        shapes.append(Shape(label, polygon))
        discs.append((*center, radius))
    return shapes


def render_scene(rng: np.random.Generator, height: int, width: int, max_shapes: int,
                 radius_range: tuple[float, float]) -> tuple[Image.Image, list[Shape]]:
    """An RGB image of shapes with shaded fills on a textured background, and the shapes."""
    canvas = textured_background(rng, height, width)
    shapes = place_shapes(rng, height, width, max_shapes, radius_range)
    for shape in shapes:
        mask = Image.new('L', (width, height), 0)
        ImageDraw.Draw(mask).polygon([tuple(p) for p in shape.polygon], fill=255)
        inside = np.asarray(mask, bool)
        yy, xx = np.nonzero(inside)
        # A linear shading gradient across the shape, so fills are not flat colour.
        gradient = rng.uniform(-0.25, 0.25, size=2)
        centred = np.stack([xx - xx.mean(), yy - yy.mean()], 1) / max(np.ptp(xx), np.ptp(yy), 1)
        shade = 1 + centred @ gradient
        colour = _saturated_colour(rng)
        canvas[yy, xx] = colour * shade[:, None] + rng.normal(0, 4, size=(len(yy), 1))
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), 'RGB')
    return image, shapes


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of scene `index` of `split`: independent of how many scenes are made."""
    return np.random.default_rng([seed, zlib.crc32(split.encode()), index])
