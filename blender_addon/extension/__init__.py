"""Hand Mocap, the Blender extension: its entry point only.

The add-on itself is ``handmocap.blender_addon.addon``, in the handmocap wheel this extension
bundles (Blender installs the wheel into its extensions' site-packages); it is told this
module's package name, which Blender uses as the preferences' id.
"""


def register():
    from handmocap.blender_addon import addon

    addon.register(__package__)


def unregister():
    from handmocap.blender_addon import addon

    addon.unregister()
