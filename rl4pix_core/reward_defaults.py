"""Default reward weights, in a module without torch so the gateway can validate configs.

The clip threshold is 0.1 in [0, 1] pixel units (about 25 of 255 levels). The Stable Diffusion VAE
alone changes pixels by a few hundredths when it encodes and decodes an image, and sampling noise
adds small differences everywhere. A threshold above that level keeps those from being penalized,
so the MAE term counts only visible changes. NOTE: 0.1 is an estimate, not tuned on MagicBrush.
"""

DEFAULT_ATTENTION_WEIGHT = 1.0
DEFAULT_MAE_WEIGHT = -1.0  # lambda of the InstructRL4Pix reward
DEFAULT_MAE_THRESHOLD = 0.1
