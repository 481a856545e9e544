"""Resize and Upsample: each axis' interpolation matrix reproduces ONNX Runtime's forward (every mode,
coordinate transformation and nearest mode, scales or sizes, opsets 10 to 19), and the backward pass,
the matrices transposed, matches finite differences."""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

from app.errors import DeepVisError
from app.net.autodiff.op import Op
from app.net.autodiff.resize import axis_matrices
from app.net.sessions import session_options
from test_autodiff_support import check_op, one_node_model

R = np.random.default_rng(11)
NO_VALUE = np.zeros(0, np.float32)  # an empty roi or scales input


def floats(*values):
    return np.array(values, np.float32)


def i64(*values):
    return np.array(values, np.int64)


def onnx_runtime_forward(model, feeds: dict) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), session_options(), providers=["CPUExecutionProvider"])
    return session.run(None, {name: value.astype(np.float32) for name, value in feeds.items()})[0]


def matrices_forward(model, inputs: list, y: np.ndarray, opset: int) -> np.ndarray:
    """The forward the rule assumes: every axis' matrix applied to the input, in float32."""
    node = model.graph.node[0]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    attrs = {name: value.decode() if isinstance(value, bytes) else value for name, value in attrs.items()}
    op = Op(node, attrs, opset, inputs, [y], [None], (True,))
    out = inputs[0].astype(np.float32)
    for axis, matrix in axis_matrices(op, np.float32):
        out = np.moveaxis(np.tensordot(matrix, out, axes=(1, axis)), 0, axis)
    return out


def assert_forward_matches(op_type: str, inputs: list, attrs: dict, opset: int) -> None:
    model, feeds = one_node_model(op_type, inputs, (0,), attrs, opset=opset)
    expected = onnx_runtime_forward(model, feeds)
    np.testing.assert_allclose(matrices_forward(model, inputs, expected, opset), expected, rtol=1e-5, atol=1e-5)


GEOMETRIES = [  # input shape, scales, sizes
    ((1, 2, 4, 5), floats(1, 1, 2, 3), None),
    ((1, 2, 4, 5), floats(1, 1, 1.5, 0.6), None),
    ((2, 1, 3, 7), NO_VALUE, i64(2, 1, 7, 3)),
    ((1, 1, 3, 7), NO_VALUE, i64(1, 1, 1, 9)),
]
INTERPOLATIONS = {
    "nearest round_prefer_floor": dict(mode="nearest", nearest_mode="round_prefer_floor"),
    "nearest round_prefer_ceil": dict(mode="nearest", nearest_mode="round_prefer_ceil"),
    "nearest floor": dict(mode="nearest", nearest_mode="floor"),
    "nearest ceil": dict(mode="nearest", nearest_mode="ceil"),
    "linear": dict(mode="linear"),
    "cubic": dict(mode="cubic"),
    "cubic exclude_outside, a=-0.5": dict(mode="cubic", exclude_outside=1, cubic_coeff_a=-0.5),
}
TRANSFORMS = {"half_pixel": 13, "pytorch_half_pixel": 13, "align_corners": 13, "asymmetric": 13,
              "tf_half_pixel_for_nn": 11, "half_pixel_symmetric": 19}  # transform: an opset that has it


@pytest.mark.parametrize("transform", list(TRANSFORMS))
@pytest.mark.parametrize("interpolation", list(INTERPOLATIONS))
def test_matrices_reproduce_onnx_runtime(interpolation, transform):
    attrs = dict(INTERPOLATIONS[interpolation], coordinate_transformation_mode=transform)
    for shape, scales, sizes in GEOMETRIES:
        inputs = [R.standard_normal(shape), NO_VALUE, scales, sizes]
        assert_forward_matches("Resize", inputs, attrs, TRANSFORMS[transform])


X4 = R.standard_normal((1, 2, 4, 6))
OTHER_FORMS = {  # op type, inputs, attributes, opset
    "resize-10 nearest, shrinking": ("Resize", [X4, floats(1, 1, 1.5, 0.6)], dict(mode="nearest"), 10),
    "resize-10 linear": ("Resize", [X4, floats(1, 1, 2.5, 0.5)], dict(mode="linear"), 10),
    "upsample-9 nearest": ("Upsample", [X4, floats(1, 1, 2.5, 1.7)], dict(mode="nearest"), 9),
    "upsample-9 linear": ("Upsample", [X4, floats(1, 1, 2, 3)], dict(mode="linear"), 9),
    "upsample-7 nearest": ("Upsample", [X4], dict(mode="nearest", scales=[1.0, 1.0, 2.0, 2.0]), 7),
    "resize-18 axes, sizes, not_larger": (
        "Resize", [X4, NO_VALUE, NO_VALUE, i64(8, 9)], dict(axes=[2, 3], keep_aspect_ratio_policy="not_larger",
                                                             mode="linear"), 18),
    "resize-18 axes, sizes, not_smaller": (
        "Resize", [X4, NO_VALUE, NO_VALUE, i64(8, 9)], dict(axes=[2, 3], keep_aspect_ratio_policy="not_smaller"), 18),
    "resize-18 negative axes, scales": ("Resize", [X4, NO_VALUE, floats(2, 0.5)], dict(axes=[-1, 2], mode="linear"),
                                        18),
    "tf_crop_and_resize linear": (
        "Resize", [X4, floats(-0.1, 0.2, 1.3, 0.7), NO_VALUE, i64(5, 7)],
        dict(axes=[2, 3], mode="linear", coordinate_transformation_mode="tf_crop_and_resize"), 18),
    "tf_crop_and_resize nearest, one column": (
        "Resize", [X4, floats(-0.1, 0.2, 1.3, 0.7), NO_VALUE, i64(5, 1)],
        dict(axes=[2, 3], mode="nearest", coordinate_transformation_mode="tf_crop_and_resize"), 18),
    "tf_crop_and_resize cubic": (
        "Resize", [X4, floats(0, 0, -0.2, 0.2, 1, 1, 1.3, 0.7), NO_VALUE, i64(1, 2, 9, 7)],
        dict(mode="cubic", coordinate_transformation_mode="tf_crop_and_resize"), 13),
    "cubic antialias, enlarging": ("Resize", [X4, NO_VALUE, floats(1, 1, 2, 1.5)], dict(mode="cubic", antialias=1),
                                   18),
    "3-D linear align_corners": ("Resize", [R.standard_normal((2, 3, 5)), NO_VALUE, floats(1, 1.5, 2)],
                                 dict(mode="linear", coordinate_transformation_mode="align_corners"), 13),
    "5-D linear (trilinear)": ("Resize", [R.standard_normal((1, 1, 3, 4, 5)), NO_VALUE, floats(1, 1, 2, 1.5, 0.7)],
                               dict(mode="linear", coordinate_transformation_mode="pytorch_half_pixel"), 13),
    "5-D nearest": ("Resize", [R.standard_normal((1, 1, 3, 4, 5)), NO_VALUE, floats(1, 1, 2, 1.5, 0.7)], {}, 13),
    "no length changes, scales not 1": ("Resize", [R.standard_normal((1, 2, 3, 2)), NO_VALUE, floats(1, 1, 1.3, 1.4)],
                                        dict(mode="linear"), 13),
    "nearest on batch and channels": ("Resize", [R.standard_normal((2, 3, 5, 4)), NO_VALUE, floats(1.5, 2, 2, 1)],
                                      dict(nearest_mode="floor"), 13),
}


@pytest.mark.parametrize("form", list(OTHER_FORMS))
def test_matrices_reproduce_onnx_runtime_in_other_forms(form):
    """Opset 10 and Upsample (asymmetric, truncating), opset 18's axes and aspect-ratio policies,
    crops (extrapolated outputs are the default 0, which no input moves), 3-D and 5-D inputs."""
    op_type, inputs, attrs, opset = OTHER_FORMS[form]
    assert_forward_matches(op_type, inputs, attrs, opset)


X = R.standard_normal((2, 2, 4, 5))
GRADIENTS = {  # inputs after X, attributes, opset, runtime of the finite differences
    "nearest x2 (scales)": ([NO_VALUE, floats(1, 1, 2, 2)], {}, 13, "reference"),
    "nearest round_prefer_ceil asymmetric (sizes)": (
        [NO_VALUE, NO_VALUE, i64(2, 2, 7, 3)], dict(nearest_mode="round_prefer_ceil",
                                                    coordinate_transformation_mode="asymmetric"), 13, "reference"),
    "bilinear x2 half_pixel": ([NO_VALUE, floats(1, 1, 2, 2)], dict(mode="linear"), 13, "reference"),
    "linear align_corners (sizes)": ([NO_VALUE, NO_VALUE, i64(2, 2, 7, 9)],
                                     dict(mode="linear", coordinate_transformation_mode="align_corners"), 13,
                                     "reference"),
    "linear pytorch_half_pixel, shrinking": ([NO_VALUE, floats(1, 1, 0.6, 0.5)],
                                             dict(mode="linear", coordinate_transformation_mode="pytorch_half_pixel"),
                                             13, "reference"),
    "cubic exclude_outside": ([NO_VALUE, floats(1, 1, 1.5, 2)], dict(mode="cubic", exclude_outside=1), 13,
                              "reference"),
    "tf_crop_and_resize linear, extrapolated": (
        [floats(0, 0, -0.2, 0.1, 1, 1, 1.2, 0.8), NO_VALUE, i64(2, 2, 6, 4)],
        dict(mode="linear", coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=2.0), 13, "ort"),
    "resize-18 axes": ([NO_VALUE, floats(3, 2)], dict(axes=[2, 3], mode="linear"), 18, "reference"),
    "resize-10 nearest": ([floats(1, 1, 2, 3)], {}, 10, "ort"),
    "upsample-9 linear": ([floats(1, 1, 2, 2)], dict(mode="linear"), 9, "ort"),
    "upsample-7 nearest": ([], dict(scales=[1.0, 1.0, 3.0, 2.0]), 7, "ort"),
}


@pytest.mark.parametrize("case", list(GRADIENTS))
def test_gradient_matches_finite_differences(case):
    rest, attrs, opset, runtime = GRADIENTS[case]
    check_op("Upsample" if "upsample" in case else "Resize", X, *rest, attrs=attrs, opset=opset, runtime=runtime)


def test_unsupported_forms_name_the_node():
    with pytest.raises(DeepVisError, match="node 'the_resize': Resize with antialias=1 on an axis it shrinks is not "
                                           "supported by backprop"):
        check_op("Resize", X, NO_VALUE, floats(1, 1, 0.5, 2), attrs=dict(mode="linear", antialias=1), opset=18)
