"""Builds a tiny random Hugging Face LM checkpoint with transformers and its reference outputs.

usage: lm_fixture.py OUT_DIR ARCH SEED IDS TEXT
  ARCH: qwen2 (4 query, 2 key/value heads, untied) | llama_tied | qwen2_sharded
  IDS:  sequences separated by ';', ids by ',' (a right-padded batch)
Writes OUT_DIR/{config.json, model.safetensors or shards, tokenizer.json} and
OUT_DIR/reference.safetensors (logits [B, n, V] f32, attention_mask [B, n] int64) and
OUT_DIR/reference.json ({"tokens": n, "loss": mean_nll} of TEXT).
Weights are drawn with std 0.25 (norms 1 ± 0.25), far from the default 0.02, so that
rotary-layout and head-grouping mistakes show in the logits.
"""
import json, sys
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
import transformers

out, arch, seed, ids_arg, text = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
torch.manual_seed(seed)
common = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, vocab_size=128, max_position_embeddings=256)
if arch.startswith("qwen2"):
    cfg = transformers.Qwen2Config(rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False, **common)
    model = transformers.Qwen2ForCausalLM(cfg)
elif arch == "llama_tied":
    cfg = transformers.LlamaConfig(rms_norm_eps=1e-5, rope_theta=500.0, tie_word_embeddings=True,
                                   **{**common, "num_key_value_heads": 1, "head_dim": 16})
    model = transformers.LlamaForCausalLM(cfg)
else:
    raise SystemExit(f"unknown ARCH {arch}")
with torch.no_grad():
    for name, p in model.named_parameters():
        if "norm" in name:
            p.copy_(1 + 0.25 * torch.randn_like(p))
        else:
            p.normal_(0.0, 0.25)
model.eval()
shard = {"max_shard_size": "20KB"} if arch.endswith("sharded") else {}
model.save_pretrained(out, safe_serialization=True, **shard)

corpus = ["the cat sat on the mat", "a dog ran in the park", "the quick brown fox jumps over the lazy dog",
          "video tokens and frames", "scaling laws of visual context"] * 20
tok = Tokenizer(models.BPE(unk_token="[UNK]"))
tok.pre_tokenizer = pre_tokenizers.Whitespace()
tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=100, special_tokens=["[UNK]"]))
tok.save(f"{out}/tokenizer.json")

seqs = [[int(i) for i in s.split(",")] for s in ids_arg.split(";")]
n = max(len(s) for s in seqs)
ids = torch.tensor([s + [0] * (n - len(s)) for s in seqs])
mask = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in seqs])
with torch.no_grad():
    logits = model(input_ids=ids, attention_mask=mask).logits.float()
    text_ids = torch.tensor([tok.encode(text).ids])
    loss = model(input_ids=text_ids, labels=text_ids).loss.item()
save_file({"logits": logits.contiguous(), "attention_mask": mask}, f"{out}/reference.safetensors")
json.dump({"tokens": text_ids.shape[1], "loss": loss}, open(f"{out}/reference.json", "w"))
