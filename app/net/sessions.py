"""Options of ONNX Runtime sessions, apart from the net facade: the net's sessions and the backward's
depthwise helper sessions (autodiff/ort_conv.py) share them, and autodiff sits below net.py."""
import onnxruntime as ort


def session_options(threads: int = 0, order: ort.ExecutionOrder = ort.ExecutionOrder.DEFAULT) -> ort.SessionOptions:
    """Options of every ONNX Runtime session the toolbox makes; threads: 0 lets ORT choose."""
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: a CPU-only machine must stay silent
    options.intra_op_num_threads = threads
    options.execution_order = order
    # idle threads sleep instead of spinning: a spinning thread holds a core that the backward
    # pass, the drawing or another program needs (the forward itself took 2x longer on 2 cores)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options
