"""Deployable exports of the project's models."""

from .onnx import export_onnx, onnx_max_abs_difference, onnx_speed_comparison

__all__ = ["export_onnx", "onnx_max_abs_difference", "onnx_speed_comparison"]
