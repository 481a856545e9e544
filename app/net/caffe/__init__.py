"""Caffe import: prototxt + caffemodel (current and V1 formats) to ONNX, and Caffe mean files."""
from app.net.caffe.convert import convert, convert_cached
from app.net.caffe.reader import read_mean_binaryproto

__all__ = ["convert", "convert_cached", "read_mean_binaryproto"]
