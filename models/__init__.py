"""The shipped ONNX models, their cards, and (with the `train` extra) the code that trains them."""
