"""The Blender side of the synthetic dataset: a long-lived bpy process that renders hand scenes.

Run as ``python -m handmocap.training.datasets.synthetic_render`` by ``synthetic.Renderer``;
never imported by the training process (bpy and torch stay in separate processes). Only numpy
and bpy are used here: the hands arrive posed, as arrays (``synthetic`` poses them with the
hand model), and the passes go back as arrays.

Protocol: pickled messages on stdin, replies pickled on the process's original stdout (Blender's
own log lines are sent to stderr). The first message is ``setup``: per side the faces, each
face's segmentation class and each vertex's dense colour. Then one ``render`` message per
scene (camera, hand vertices, skin, lights, occluders, seed), answered with

  rgba   (S, S, 4) uint8    the hands and occluders over a transparent film (straight alpha)
  index  (S, S) uint8       Cycles' material index pass: the class of the surface seen
  depth  (S, S) float32     Cycles' depth pass along the optical axis (inf where nothing)
  dense  (S, S, 3) float32  the dense colour AOV divided by the hand coverage AOV (0..1)
  cover  (S, S) float32     the fraction of a pixel's samples that hit a hand

Index and depth come from each pixel's first sample (Cycles writes those passes once), the
colour and the AOVs are averaged over all samples, so an edge pixel's class is what one sample
saw while its colour is the filtered mixture. ``quit`` ends the process.

The scene is built once: a camera at the origin turned so that Blender's camera (looking down
-Z, +Y up) is OpenCV's (x right, y down, z forward), so world coordinates are the OpenCV
camera frame; the two hand meshes with one material per part (``pass_index`` = its class);
a box and a cylinder as occluders (class 0); a sun and two area lights; a compositor whose File
Output node writes the passes, which are read back through ``bpy.data.images``. Per scene only
vertex positions (``foreach_set``), colours, light settings, the world colour and the camera
change.
"""

from __future__ import annotations

import math
import os
import pickle
import sys
import tempfile
import traceback
from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector

SIDES = ("left", "right")
PASSES = ("index", "depth", "dense", "cover")


def _principled(tree, mottled: bool) -> bpy.types.Node:
    """A Principled BSDF coloured by its object's colour (roughness: the colour's alpha),
    mottled a little for skin."""
    nodes, links = tree.nodes, tree.links
    bsdf = nodes.new("ShaderNodeBsdfPrincipled")
    info = nodes.new("ShaderNodeObjectInfo")
    links.new(info.outputs["Alpha"], bsdf.inputs["Roughness"])  # roughness rides in alpha
    if not mottled:
        links.new(info.outputs["Color"], bsdf.inputs["Base Color"])
        return bsdf
    noise = nodes.new("ShaderNodeTexNoise")  # blotches of a few mm over the hand's box
    noise.inputs["Scale"].default_value = 40.0
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.blend_type = "MULTIPLY"
    mix.inputs["Factor"].default_value = 0.2
    links.new(info.outputs["Color"], mix.inputs["A"])
    links.new(noise.outputs["Color"], mix.inputs["B"])
    links.new(mix.outputs["Result"], bsdf.inputs["Base Color"])
    return bsdf


def _hand_material(name: str, pass_index: int) -> bpy.types.Material:
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    mat.pass_index = pass_index
    tree = mat.node_tree
    tree.nodes.clear()
    out = tree.nodes.new("ShaderNodeOutputMaterial")
    bsdf = _principled(tree, mottled=True)
    tree.links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    attr = tree.nodes.new("ShaderNodeAttribute")
    attr.attribute_name = "dense"
    dense = tree.nodes.new("ShaderNodeOutputAOV")
    dense.aov_name = "dense"
    tree.links.new(attr.outputs["Color"], dense.inputs["Color"])
    cover = tree.nodes.new("ShaderNodeOutputAOV")
    cover.aov_name = "cover"
    cover.inputs["Value"].default_value = 1.0
    return mat


def _occluder_material() -> bpy.types.Material:
    mat = bpy.data.materials.new("occluder")
    mat.use_nodes = True
    mat.pass_index = 0
    tree = mat.node_tree
    tree.nodes.clear()
    out = tree.nodes.new("ShaderNodeOutputMaterial")
    bsdf = _principled(tree, mottled=False)
    tree.links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    return mat


def _hand_object(side: str, faces: np.ndarray, face_class: np.ndarray, colors: np.ndarray):
    """A mesh of the hand's topology, one material per class, the dense colours attached."""
    num_vertices = len(colors)
    mesh = bpy.data.meshes.new(f"hand_{side}")
    mesh.vertices.add(num_vertices)
    mesh.loops.add(faces.size)
    mesh.polygons.add(len(faces))
    mesh.loops.foreach_set("vertex_index", faces.astype(np.int32).ravel())
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    classes = sorted(set(face_class.tolist()))
    for c in classes:
        mesh.materials.append(_hand_material(f"{side}_{c}", int(c)))
    slot = {c: k for k, c in enumerate(classes)}
    mesh.polygons.foreach_set(
        "material_index", np.array([slot[c] for c in face_class.tolist()], np.int32)
    )
    mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), bool))
    mesh.update()
    mesh.validate()
    attribute = mesh.color_attributes.new("dense", "FLOAT_COLOR", "POINT")
    rgba = np.concatenate([colors, np.ones((num_vertices, 1))], axis=1).astype(np.float32)
    attribute.data.foreach_set("color", rgba.ravel())
    obj = bpy.data.objects.new(f"hand_{side}", mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _compositor(scene, folder: str) -> None:
    """Render layers -> File Output: the picture as PNG (view transform), passes as EXR."""
    tree = bpy.data.node_groups.new("passes", "CompositorNodeTree")
    scene.compositing_node_group = tree
    layers = tree.nodes.new("CompositorNodeRLayers")
    files = tree.nodes.new("CompositorNodeOutputFile")
    files.directory = folder + os.sep
    files.file_name = "pass_"
    files.format.media_type = "IMAGE"
    files.format.file_format = "OPEN_EXR"
    files.format.color_depth = "32"
    files.format.exr_codec = "NONE"
    picture = files.file_output_items.new("RGBA", "rgba")
    picture.override_node_format = True
    picture.format.file_format = "PNG"
    picture.format.color_mode = "RGBA"
    picture.save_as_render = True
    tree.links.new(layers.outputs["Image"], files.inputs["rgba"])
    sockets = {"index": "Material Index", "depth": "Depth", "dense": "dense", "cover": "cover"}
    for name, socket in sockets.items():
        item = files.file_output_items.new("RGBA" if name == "dense" else "FLOAT", name)
        item.save_as_render = False
        tree.links.new(layers.outputs[socket], files.inputs[name])


class Scene:
    """The scene of all renders; ``render`` updates it and renders one picture."""

    def __init__(self, setup: dict, folder: str):
        self.folder = folder
        bpy.ops.wm.read_factory_settings(use_empty=True)
        scene = bpy.context.scene
        self.scene = scene
        scene.render.engine = "CYCLES"
        scene.cycles.device = "CPU"
        scene.cycles.use_adaptive_sampling = False
        scene.cycles.use_denoising = bool(setup.get("denoise", True))
        scene.cycles.denoiser = "OPENIMAGEDENOISE"
        scene.cycles.denoising_quality = "FAST"
        scene.cycles.denoising_prefilter = "FAST"
        scene.cycles.denoising_input_passes = "RGB_ALBEDO"
        scene.cycles.max_bounces = 4
        scene.cycles.diffuse_bounces = 2
        scene.cycles.glossy_bounces = 1
        scene.cycles.transmission_bounces = 0
        scene.cycles.volume_bounces = 0
        scene.cycles.transparent_max_bounces = 2
        scene.cycles.caustics_reflective = scene.cycles.caustics_refractive = False
        scene.render.film_transparent = True
        scene.render.use_persistent_data = True
        scene.render.threads_mode = "FIXED"
        scene.render.threads = int(setup.get("threads", 1))
        scene.render.resolution_percentage = 100
        scene.view_settings.view_transform = "Standard"
        scene.view_settings.look = "None"
        layer = scene.view_layers[0]
        layer.use_pass_material_index = True
        layer.use_pass_z = True
        layer.aovs.add().name = "dense"
        layer.aovs[-1].type = "COLOR"
        layer.aovs.add().name = "cover"
        layer.aovs[-1].type = "VALUE"

        camera = bpy.data.cameras.new("camera")
        camera.sensor_fit = "HORIZONTAL"
        camera.sensor_width = 36.0
        camera.clip_start, camera.clip_end = 0.01, 100.0
        self.camera = bpy.data.objects.new("camera", camera)
        self.camera.rotation_euler = (math.pi, 0.0, 0.0)  # Blender camera -> OpenCV camera
        scene.collection.objects.link(self.camera)
        scene.camera = self.camera

        self.hands = {
            side: _hand_object(
                side, np.asarray(h["faces"]), np.asarray(h["face_class"]), np.asarray(h["colors"])
            )
            for side, h in setup["hands"].items()
        }
        occluder = _occluder_material()
        self.occluders = {}
        for kind in ("box", "cylinder"):
            if kind == "box":
                bpy.ops.mesh.primitive_cube_add(size=1.0)
            else:
                bpy.ops.mesh.primitive_cylinder_add(radius=0.5, depth=1.0, vertices=24)
            obj = bpy.context.active_object
            obj.name = kind
            obj.data.materials.append(occluder)
            self.occluders[kind] = obj
        self.lights = []
        for kind in ("SUN", "AREA", "AREA"):
            data = bpy.data.lights.new(f"light{len(self.lights)}", kind)
            obj = bpy.data.objects.new(data.name, data)
            scene.collection.objects.link(obj)
            self.lights.append(obj)
        world = bpy.data.worlds.new("world")
        world.use_nodes = True
        scene.world = world
        self.background = world.node_tree.nodes["Background"]
        _compositor(scene, folder)

    def _camera(self, size: int, k: np.ndarray) -> None:
        """Intrinsics (OpenCV, pixel centres at +0.5: the image spans [0, size]) -> camera."""
        render, camera = self.scene.render, self.camera.data
        render.resolution_x = render.resolution_y = size
        render.pixel_aspect_x = render.pixel_aspect_y = 1.0
        camera.lens = float(k[0, 0]) * camera.sensor_width / size
        camera.shift_x = (size / 2 - float(k[0, 2])) / size
        camera.shift_y = (float(k[1, 2]) - size / 2) / size

    def _hands(self, vertices: dict, skin: dict) -> None:
        for side, obj in self.hands.items():
            obj.hide_render = side not in vertices
            if side in vertices:
                obj.data.vertices.foreach_set("co", np.asarray(vertices[side], np.float32).ravel())
                obj.data.update()
                color, roughness = skin[side]
                obj.color = (*map(float, color), float(roughness))

    def _occluders(self, occluders: list) -> None:
        for obj in self.occluders.values():
            obj.hide_render = True
        for o in occluders:
            obj = self.occluders[o["kind"]]
            obj.hide_render = False
            obj.location = tuple(map(float, o["center"]))
            obj.scale = tuple(map(float, o["scale"]))
            obj.rotation_euler = tuple(map(float, o["rotation"]))
            obj.color = (*map(float, o["color"]), float(o["roughness"]))

    def _lights(self, lights: list, target: np.ndarray) -> None:
        for obj in self.lights:
            obj.data.energy = 0.0
        for obj, light in zip(self.lights, lights, strict=False):
            obj.data.color = tuple(map(float, light["color"]))
            obj.data.energy = float(light["strength"])
            position = Vector(tuple(map(float, light["position"])))
            obj.location = position
            obj.rotation_euler = (
                (Vector(tuple(map(float, target))) - position).to_track_quat("-Z", "Y").to_euler()
            )
            if obj.data.type == "AREA":
                obj.data.size = float(light["size"])
            else:
                obj.data.angle = float(light["size"])

    def render(self, request: dict) -> dict:
        size = int(request["size"])
        self._camera(size, np.asarray(request["camera"]))
        self._hands(request["vertices"], request["skin"])
        self._occluders(request["occluders"])
        self._lights(request["lights"], np.asarray(request["target"]))
        self.background.inputs["Color"].default_value = (*map(float, request["ambient"]), 1.0)
        self.background.inputs["Strength"].default_value = float(request["ambient_strength"])
        self.scene.cycles.samples = int(request["samples"])
        self.scene.cycles.seed = int(request["seed"])
        bpy.ops.render.render()
        return self._read(size)

    def _read(self, size: int) -> dict:
        passes = {name: self._load(f"pass_{name}.exr", size) for name in PASSES}
        with open(os.path.join(self.folder, "pass_rgba.png"), "rb") as f:
            png = f.read()
        cover = passes["cover"][..., 0]
        dense = passes["dense"][..., :3] / np.maximum(cover, 1e-6)[..., None]
        depth = passes["depth"][..., 0]
        return {
            "rgba_png": png,
            "index": np.round(passes["index"][..., 0]).astype(np.uint8),
            "depth": np.where(depth < 1e9, depth, np.inf).astype(np.float32),
            "dense": np.clip(np.where(cover[..., None] > 0, dense, 0.0), 0, 1).astype(np.float32),
            "cover": cover.astype(np.float32),
        }

    def _load(self, name: str, size: int) -> np.ndarray:
        """(size, size, 4) float32 of an EXR the compositor wrote, top row first."""
        image = bpy.data.images.load(os.path.join(self.folder, name), check_existing=False)
        try:
            image.colorspace_settings.name = "Non-Color"
            pixels = np.empty(size * size * 4, np.float32)
            image.pixels.foreach_get(pixels)
        finally:
            bpy.data.images.remove(image)
        return pixels.reshape(size, size, 4)[::-1]


def serve(requests, replies) -> None:
    """Answer pickled requests until ``quit`` or the end of the input."""
    scene = None
    with tempfile.TemporaryDirectory(prefix="handmocap_render_", dir=_scratch()) as folder:
        while True:
            try:
                message = pickle.load(requests)
            except EOFError:
                return
            kind = message.get("kind")
            if kind == "quit":
                return
            try:
                if kind == "setup":
                    scene = Scene(message, folder)
                    reply = {"ok": True, "version": bpy.app.version_string}
                elif kind == "render" and scene is not None:
                    reply = {"ok": True, **scene.render(message)}
                else:
                    reply = {"ok": False, "error": f"unexpected message {kind!r}"}
            except Exception:  # the parent reports it with the traceback
                reply = {"ok": False, "error": traceback.format_exc()}
            pickle.dump(reply, replies, protocol=pickle.HIGHEST_PROTOCOL)
            replies.flush()


def _scratch() -> str | None:
    """A memory-backed folder for the per-render files where the system has one."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def main() -> None:
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # Blender's log must not mix in
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
