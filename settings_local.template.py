# Copy this file to settings_local.py (not versioned) and set only what you change.
# Every setting, with its documented default, is in settings.py.

# model = "efficientnet-lite0"       # or "path/to/model.onnx", "path/to/deploy.prototxt", a model_zoo name
# provider = "cpu"                   # "auto", "cuda" or "cpu"
# backward_engine = "numpy"          # "graph" (one ONNX Runtime session per layer and mode) or "numpy"
# forward_sessions = 2               # forward sessions kept, one per set of tensors asked for
# picture_percentile = 99.0            # contrast of the back pane and diff tiles (100: the max)
# optimize_preset = "lucid"          # tools.optimize_image: 1-5 (the paper), "lucid" or "maco"
# optimize_on_select = True           # optimize each unit the cursor rests on (no image yet)
# optimize_app_steps = None          # key 2: the preset's full step count instead of 200
# web_host = "0.0.0.0"                # run_toolbox.py --web serves every network (prefer an SSH tunnel)
# web_jpeg_quality = 75              # smaller pictures for a slow link to the browser
# image_max_pixels = 400_000_000     # read bigger images (default 100 MP, checked before decoding)
# atlas_dir = "~/public_html/atlas"   # tools.atlas --out default, where key A looks
