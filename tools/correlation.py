"""The same as tools.layer_stats (histograms, inactivity and correlation are written together).

    python -m tools.correlation --maxes OUT/maxes.json [--layers L1,L2|all] [--bins 50] [--order cluster|pca|none]
"""
from tools.layer_stats import main

if __name__ == "__main__":
    main()
