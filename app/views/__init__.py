"""Views beyond the original toolbox: occlusion saliency, filter weights, channel ordering,
gradients with respect to filter weights, and 3-D activation volumes.

Every function here computes arrays from a ``Net`` or draws arrays into H x W x 3 uint8 BGR
images; none opens a window, so the app's panes and the command-line tools share them.
"""
