"""handmocap training: datasets, losses, trainer and evaluation for the ACR and DIR networks.

Imports ``handmocap.core``, never ``handmocap.blender_addon``. Filled in by later issues.
"""
