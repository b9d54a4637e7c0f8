"""The vision-action model: what it sees (spec.py), the network (net.py), samples from
recordings (data.py), training (train.py), ONNX export (export.py) and the onnxruntime policy
(policy.py); `emulator train` and `emulator run` (cli.py). default.onnx is the shipped model."""
