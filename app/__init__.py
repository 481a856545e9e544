"""DeepVis Toolbox: see what every unit of a trained CNN does."""
