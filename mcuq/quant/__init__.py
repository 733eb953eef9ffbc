"""Quantization: arithmetic shared with the kernels, and post-training quantization of float models.

* ``fixedpoint``: TFLite's integer multipliers, shifts and rounding (the numpy mirror of the C helpers);
* ``packing``: sub-byte (int4/2/1) packing;
* ``values``: affine quantize/dequantize and symmetric weight scales on arrays;
* ``edge``: float data in and out of a quantized model (``mcuq run`` with float32 inputs);
* post-training quantization (``mcuq.quantize`` is ``ptq.quantize``): ``calib`` loads calibration data,
  ``observers`` turns an activation's values into a range, ``batch`` runs one op on all samples, ``calibrator``
  builds the int8 graph, ``report`` says what each layer lost.
"""
