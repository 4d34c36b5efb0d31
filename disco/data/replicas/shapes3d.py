"""Offline 3D Shapes replica (Burgess & Kim 2018): a ray-cast room with one object, rendered in batches.

Same factor grid, values, array names, dtypes and order as the official ``3dshapes.h5``: ``images`` (N, 64, 64, 3)
uint8 channels-last and ``labels`` (N, 6) float64 values (floor_hue, wall_hue, object_hue, scale, shape, orientation) —
480,000 images for the full grid. The scene: a floor, a back wall and a side wall, one object (cube, cylinder, sphere,
capsule; cylinder and capsule lie on their side) standing in the middle and turned about the vertical axis, a point
light with Lambert shading and a cast shadow. Geometry depends only on (scale, shape, orientation), so each of those
combinations is ray-cast once (2×2 supersampled) into per-surface coverage×shading maps; every image is then a linear
mix of the floor, wall and object maps with the RGB colours of their hues (HSV with fixed saturation and value), done
as one matrix product per block of images.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import torch

from disco.data.datasets import SHAPES3D
from disco.data.factors import FactorSpace
from disco.data.replicas.common import grid_classes, replica_attrs, subsample_steps, write_replica_file

SIZE = 64
SUPER = 2
SATURATION, VALUE = 0.8, 1.0
CAMERA = np.array([1.4, 2.0, -4.7])
LOOK_AT = np.array([0.0, 0.75, 0.0])
FOV_DEG = 42.0
BACK_WALL_Z = 3.2
SIDE_WALL_X = -3.6
LIGHT = np.array([-1.5, 5.5, -3.5])
AMBIENT, DIFFUSE = 0.38, 0.62
_EPS = 1e-6
_INF = np.inf

# Object dimensions at scale 1 (world units).
CUBE_HALF = 0.62
SPHERE_R = 0.7
CYL_R, CYL_HALF_LEN = 0.5, 0.75
CAPS_R, CAPS_HALF_LEN = 0.45, 0.5


def camera_rays(size: int = SIZE * SUPER) -> tuple[np.ndarray, np.ndarray]:
    """Origins and unit directions ``(size*size, 3)`` of the primary rays, row-major, image rows pointing down."""
    forward = LOOK_AT - CAMERA
    forward /= np.linalg.norm(forward)
    right = np.cross(np.array([0.0, 1.0, 0.0]), forward)
    right /= np.linalg.norm(right)
    up = np.cross(forward, right)
    half = np.tan(np.radians(FOV_DEG) / 2)
    coords = ((np.arange(size) + 0.5) / size * 2 - 1) * half
    px, py = np.meshgrid(coords, -coords)
    dirs = forward[None] + px.reshape(-1, 1) * right[None] + py.reshape(-1, 1) * up[None]
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return np.broadcast_to(CAMERA, dirs.shape).copy(), dirs


def _rot_y(v: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([c * v[:, 0] + s * v[:, 2], v[:, 1], -s * v[:, 0] + c * v[:, 2]], axis=1)


def _finite(t: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(t), t, 0.0)


def _sphere(o: np.ndarray, d: np.ndarray, centre: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    oc = o - centre
    b = (oc * d).sum(1)
    c = (oc * oc).sum(1) - r * r
    disc = b * b - c
    t = -b - np.sqrt(np.maximum(disc, 0.0))
    t = np.where((disc >= 0) & (t > _EPS), t, _INF)
    return t, (o + _finite(t)[:, None] * d - centre) / r


def _x_cylinder(o: np.ndarray, d: np.ndarray, r: float, half: float) -> tuple[np.ndarray, np.ndarray]:
    """Side of a cylinder of radius r around the x axis at height r, limited to |x| <= half."""
    oy, oz = o[:, 1] - r, o[:, 2]
    a = np.maximum(d[:, 1] ** 2 + d[:, 2] ** 2, 1e-12)
    b = oy * d[:, 1] + oz * d[:, 2]
    c = oy * oy + oz * oz - r * r
    disc = b * b - a * c
    t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
    x = o[:, 0] + t * d[:, 0]
    t = np.where((disc >= 0) & (t > _EPS) & (np.abs(x) <= half), t, _INF)
    p = o + _finite(t)[:, None] * d
    normal = np.stack([np.zeros_like(t), p[:, 1] - r, p[:, 2]], axis=1) / r
    return t, normal


def _closest(*hits: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    ts = np.stack([h[0] for h in hits])
    best = ts.argmin(0)
    rows = np.arange(ts.shape[1])
    normals = np.stack([h[1] for h in hits])
    return ts[best, rows], normals[best, rows]


def intersect_object(
    o: np.ndarray, d: np.ndarray, shape: int, scale: float, angle_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Distance along each ray to the object (inf on a miss) and the world-space unit normal at the hit."""
    angle = np.radians(angle_deg)
    lo, ld = _rot_y(o, -angle), _rot_y(d, -angle)
    if shape == 0:  # cube standing on the floor
        h = CUBE_HALF * scale
        lo_b, hi_b = np.array([-h, 0.0, -h]), np.array([h, 2 * h, h])
        with np.errstate(divide="ignore", invalid="ignore"):
            safe = np.where(np.abs(ld) < 1e-12, 1e-12, ld)
            t1, t2 = (lo_b - lo) / safe, (hi_b - lo) / safe
        tmin, tmax = np.minimum(t1, t2), np.maximum(t1, t2)
        tnear, tfar = tmin.max(1), tmax.min(1)
        axis = tmin.argmax(1)
        t = np.where((tnear <= tfar) & (tnear > _EPS), tnear, _INF)
        normal = np.zeros_like(lo)
        normal[np.arange(len(t)), axis] = -np.sign(safe[np.arange(len(t)), axis])
    elif shape == 1:  # cylinder lying on its side
        r, half = CYL_R * scale, CYL_HALF_LEN * scale
        caps = []
        for sign in (-1.0, 1.0):
            with np.errstate(divide="ignore", invalid="ignore"):
                tc = (sign * half - lo[:, 0]) / np.where(np.abs(ld[:, 0]) < 1e-12, 1e-12, ld[:, 0])
            p = lo + _finite(tc)[:, None] * ld
            ok = (tc > _EPS) & ((p[:, 1] - r) ** 2 + p[:, 2] ** 2 <= r * r)
            caps.append((np.where(ok, tc, _INF), np.tile([sign, 0.0, 0.0], (len(tc), 1))))
        t, normal = _closest(_x_cylinder(lo, ld, r, half), *caps)
    elif shape == 2:  # sphere resting on the floor
        r = SPHERE_R * scale
        t, normal = _sphere(lo, ld, np.array([0.0, r, 0.0]), r)
    else:  # capsule lying on its side
        r, half = CAPS_R * scale, CAPS_HALF_LEN * scale
        t, normal = _closest(
            _x_cylinder(lo, ld, r, half),
            _sphere(lo, ld, np.array([-half, r, 0.0]), r),
            _sphere(lo, ld, np.array([half, r, 0.0]), r),
        )
    return t, _rot_y(normal, angle)


def _lambert(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    to_light = LIGHT[None] - points
    to_light /= np.linalg.norm(to_light, axis=1, keepdims=True)
    return AMBIENT + DIFFUSE * np.clip((normals * to_light).sum(1), 0.0, 1.0)


def _background(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance, surface id (0 floor, 1 wall) and normal of the room behind each primary ray."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(d[:, 1] < 0, -o[:, 1] / d[:, 1], _INF)
        t_back = np.where(d[:, 2] > 0, (BACK_WALL_Z - o[:, 2]) / d[:, 2], _INF)
        t_side = np.where(d[:, 0] < 0, (SIDE_WALL_X - o[:, 0]) / d[:, 0], _INF)
    ts = np.stack([t_floor, t_back, t_side])
    which = ts.argmin(0)
    normals = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])[which]
    return ts.min(0), np.minimum(which, 1), normals


def geometry_maps(space: FactorSpace = SHAPES3D, steps: tuple[int, ...] = (1,) * 6) -> np.ndarray:
    """Coverage×shading of floor, wall and object: float32 ``(G, 64*64, 3)`` for every (scale, shape, orientation)
    point of the (subsampled) grid, in storage order."""
    o, d = camera_rays()
    t_bg, surface, n_bg = _background(o, d)
    p_bg = o + t_bg[:, None] * d
    shade_bg = _lambert(p_bg, n_bg)
    to_light = LIGHT[None] - p_bg
    light_dist = np.linalg.norm(to_light, axis=1)
    to_light /= light_dist[:, None]
    sub = space.subset(steps)
    scales, shapes, angles = sub.values[3], sub.values[4], sub.values[5]
    maps = []
    for scale in scales:
        for shape in shapes:
            for angle in angles:
                t_obj, n_obj = intersect_object(o, d, int(shape), float(scale), float(angle))
                t_shadow, _ = intersect_object(p_bg + 1e-4 * to_light, to_light, int(shape), float(scale), float(angle))
                shade = np.where(t_shadow < light_dist, AMBIENT, shade_bg)
                hit = t_obj < t_bg
                shade_obj = _lambert(o + np.where(hit, t_obj, 0.0)[:, None] * d, np.where(hit[:, None], n_obj, 0.0))
                layers = np.stack(
                    [
                        np.where(~hit & (surface == 0), shade, 0.0),
                        np.where(~hit & (surface == 1), shade, 0.0),
                        np.where(hit, shade_obj, 0.0),
                    ],
                    axis=1,
                )
                fine = layers.reshape(SIZE, SUPER, SIZE, SUPER, 3).mean((1, 3))
                maps.append(fine.reshape(SIZE * SIZE, 3))
    return np.stack(maps).astype(np.float32)


def hue_rgb(hues: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] of HSV colours with the given hues and the replica's fixed saturation and value."""
    return np.array([colorsys.hsv_to_rgb(float(h), SATURATION, VALUE) for h in hues], dtype=np.float32)


def shapes3d_chunks(space: FactorSpace, steps: tuple[int, ...], images_per_chunk: int = 4800) -> Iterator[np.ndarray]:
    """Images of the subsampled grid in storage order: uint8 ``(n, 64, 64, 3)`` blocks."""
    sub = space.subset(steps)
    maps = torch.from_numpy(geometry_maps(space, steps))  # (G, P, 3 surfaces)
    g = maps.shape[0]
    flat = maps.reshape(-1, 3)
    floor_rgb, wall_rgb, obj_rgb = (torch.from_numpy(hue_rgb(v)) for v in sub.values[:3])
    hue_combos = [(f, w, ob) for f in range(sub.sizes[0]) for w in range(sub.sizes[1]) for ob in range(sub.sizes[2])]
    per_chunk = max(1, images_per_chunk // g)
    for start in range(0, len(hue_combos), per_chunk):
        blocks = []
        for f, w, ob in hue_combos[start : start + per_chunk]:
            colours = torch.stack([floor_rgb[f], wall_rgb[w], obj_rgb[ob]]) * 255.0  # (surface, rgb)
            pixels = (flat @ colours).add_(0.5).clamp_(0, 255).to(torch.uint8)
            blocks.append(pixels.reshape(g, SIZE, SIZE, 3))
        yield torch.cat(blocks).numpy()


def make_shapes3d(out_path: str | Path, subsample: Mapping[str, int] | None = None, *, force: bool = False) -> Path:
    """Write a 3D Shapes replica (full grid, or every ``step``-th value of the factors named in ``subsample``)."""
    steps = tuple(subsample_steps(SHAPES3D, subsample))
    classes = grid_classes(SHAPES3D, steps)
    return write_replica_file(
        Path(out_path),
        force=force,
        image_key="images",
        image_shape=(SIZE, SIZE, 3),
        labels={"labels": SHAPES3D.classes_to_values(classes)},
        chunks=shapes3d_chunks(SHAPES3D, steps),
        attrs=replica_attrs("shapes3d", SHAPES3D, steps),
    )
