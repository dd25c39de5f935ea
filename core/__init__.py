"""handmocap core: hand models, rotations, takes and (later) capture backends.

Never imports ``bpy`` or ``mathutils``; importing this package does no work beyond defining names.
"""

__version__ = "0.1.0"
