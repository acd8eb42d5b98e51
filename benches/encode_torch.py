"""PyTorch/transformers reference for `vislaw encode`'s speed (`vislaw-bench encode` runs it).

Three modes:

    python benches/encode_torch.py --make-tower DIR [--family siglip|clip] [--image-size 224]
        [--patch 16] [--width 384] [--layers 6] [--heads 6] [--seed 0]
  builds a random SigLIP- (or CLIP-) shaped vision tower with transformers and saves it.

    python benches/encode_torch.py --encoder DIR --frames FRAMES.npy --layer -1 --batch 16 [--threads N]
  times the tower over the frames: the same tower, the same decoded frames (u8 [N, S, S, 3]
  as .npy, or raw rgb24 .rgb as ffmpeg writes them), the same batch, and the same outputs
  (hidden state K, that layer's attention and head-averaged keys, cast to f16). Prints one
  JSON object: frames, seconds and frames/s of the tower (preprocessing included, decoding
  not), after one untimed warm-up batch.

    python benches/encode_torch.py --decode VIDEO --fps F --max-frames N --size S
  times a plain ffmpeg pipe (`fps=F,scale=S:S:flags=bicubic`, first N frames, rgb24) read
  into numpy. Prints frames, seconds and frames/s.
"""
import argparse, json, subprocess, time
import numpy as np


def make_tower(a):
    import torch
    from transformers import SiglipVisionConfig, SiglipVisionModel, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(a.seed)
    kw = dict(
        hidden_size=a.width,
        intermediate_size=4 * a.width,
        num_hidden_layers=a.layers,
        num_attention_heads=a.heads,
        image_size=a.image_size,
        patch_size=a.patch,
    )
    if a.family == "clip":
        model = CLIPVisionModel(CLIPVisionConfig(**kw))
    else:
        model = SiglipVisionModel(SiglipVisionConfig(**kw))
    model.eval().save_pretrained(a.make_tower)
    print(json.dumps({"tower": a.make_tower, "family": a.family, "parameters": sum(p.numel() for p in model.parameters())}))


def load_frames(path, s):
    if path.endswith(".npy"):
        raw = np.load(path, mmap_mode="r")
        assert raw.dtype == np.uint8 and raw.shape[1:] == (s, s, 3), f"{path}: {raw.dtype} {raw.shape}, expected u8 [N, {s}, {s}, 3]"
        return np.ascontiguousarray(raw)
    return np.fromfile(path, dtype=np.uint8).reshape(-1, s, s, 3)


def time_tower(a):
    import torch
    from transformers import AutoConfig, AutoModel

    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = AutoConfig.from_pretrained(a.encoder)
    model = AutoModel.from_pretrained(a.encoder, attn_implementation="eager").eval()
    tower = getattr(model, "vision_model", model)
    vc = getattr(cfg, "vision_config", cfg)
    s, clip = vc.image_size, "clip" in cfg.model_type
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073] if clip else [0.5] * 3).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711] if clip else [0.5] * 3).view(1, 3, 1, 1)
    raw = load_frames(a.frames, s)
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


def time_decode(a):
    s = a.size
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", a.decode, "-map", "0:v:0",
           "-vf", f"fps={a.fps},scale={s}:{s}:flags=bicubic+accurate_rnd+full_chroma_int",
           "-frames:v", str(a.max_frames), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True).stdout
    frames = np.frombuffer(out, dtype=np.uint8).reshape(-1, s, s, 3)
    dt = time.perf_counter() - t0
    print(json.dumps({"frames": len(frames), "seconds": dt, "frames_per_s": len(frames) / dt}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--make-tower")
    p.add_argument("--family", choices=["siglip", "clip"], default="siglip")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--patch", type=int, default=16)
    p.add_argument("--width", type=int, default=384)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--encoder")
    p.add_argument("--frames")
    p.add_argument("--layer", type=int, default=-1)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--decode")
    p.add_argument("--fps", type=float, default=2.0)
    p.add_argument("--max-frames", type=int, default=1 << 30)
    p.add_argument("--size", type=int, default=224)
    a = p.parse_args()
    if a.make_tower:
        make_tower(a)
    elif a.decode:
        time_decode(a)
    elif a.encoder and a.frames:
        time_tower(a)
    else:
        p.error("give --make-tower DIR, --decode VIDEO, or --encoder DIR --frames FILE")


if __name__ == "__main__":
    main()
