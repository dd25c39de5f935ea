"""handmocap Blender add-on: camera, hand rigs, keyframes, retargeting and FBX export.

Every ``bpy`` call of the project lives in this package. Filled in by later issues.
"""
