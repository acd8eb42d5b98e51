"""PyTorch/transformers reference for `vislaw encode`'s speed: the same tower, the same
decoded frames (raw rgb24 at the tower's size, as ffmpeg writes them for vislaw), the same
batch, and the same outputs (hidden state K, that layer's attention and head-averaged keys).

    python benches/encode_torch.py --encoder DIR --frames FRAMES.rgb --layer -1 --batch 16

FRAMES.rgb: `ffmpeg -i V -vf fps=F,scale=S:S:flags=bicubic -f rawvideo -pix_fmt rgb24 FRAMES.rgb`.
Prints one JSON object: frames, seconds and frames/s of the tower (preprocessing included,
decoding not), after one untimed warm-up batch.
"""
import argparse, json, time
import numpy as np
import torch
from transformers import AutoConfig, AutoModel


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--encoder", required=True)
    p.add_argument("--frames", required=True)
    p.add_argument("--layer", type=int, default=-1)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = AutoConfig.from_pretrained(a.encoder)
    model = AutoModel.from_pretrained(a.encoder, attn_implementation="eager").eval()
    tower = getattr(model, "vision_model", model)
    vc = getattr(cfg, "vision_config", cfg)
    s, clip = vc.image_size, "clip" in cfg.model_type
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073] if clip else [0.5] * 3).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711] if clip else [0.5] * 3).view(1, 3, 1, 1)
    raw = np.fromfile(a.frames, dtype=np.uint8).reshape(-1, s, s, 3)
    n_layers = vc.num_hidden_layers
    k = a.layer if a.layer >= 0 else n_layers + 1 + a.layer
    j = max(k, 1) - 1
    heads = vc.num_attention_heads

    def run(chunk):
        x = (torch.from_numpy(chunk).float().permute(0, 3, 1, 2) / 255 - mean) / std
        o = tower(pixel_values=x, output_hidden_states=True, output_attentions=True)
        skip = 1 if clip else 0
        feats = o.hidden_states[k][:, skip:]
        att = o.attentions[j]
        att = att[:, :, 0, 1:].sum(1) if clip else att.sum(1).mean(1)
        layer = tower.encoder.layers[j]
        keys = layer.self_attn.k_proj(layer.layer_norm1(o.hidden_states[j]))
        keys = keys.view(keys.shape[0], keys.shape[1], heads, -1).mean(2)[:, skip:]
        return feats.half(), att.half(), keys.half()

    with torch.no_grad():
        run(raw[: a.batch])
        t0 = time.perf_counter()
        for i in range(0, len(raw), a.batch):
            run(raw[i : i + a.batch])
        dt = time.perf_counter() - t0
    print(json.dumps({"frames": len(raw), "seconds": dt, "frames_per_s": len(raw) / dt, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
