"""PyTorch-eager reference for `vislaw-bench train`: the same projector + LM, batch and
optimiser step as vislaw's tch training loop, and the same reducers, on random data.
With --serve (what `vislaw-bench train` runs) it builds the model, the batch and the reducer
input once, runs 5 untimed steps, then answers one JSON request per line of stdin with one
JSON line on stdout until stdin closes: {"figure": "train", "steps": N} times N steps,
{"figure": "reduce", "label": "spatial/temporal", "calls": N} times N calls of a reducer;
each answers {"per_s": samples or frames per second}; a bad request answers {"error": why}.
Without it, one invocation is one timed repeat (5 warm-up steps, one untimed pass per
reducer) and prints training samples/s and reducer frames/s as one JSON object.

With --init FILE --dump-losses it times nothing: it loads the initial weights and the batch
vislaw wrote (`vislaw::bench::same_work::write_train_fixture`: vislaw's variable names, the
inputs under `input.*`), runs --steps optimiser steps of the same step as the timed loop, and
prints the loss before each step, in float32 and again in float64 from the same start (the
float64 run measures the float32 rounding noise the test's tolerance is set from)."""
import argparse, json, math, time
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        self.fc = nn.Linear(width, 4 * width)
        self.fc_out = nn.Linear(4 * width, width)

    def forward(self, x):
        b, t, c = x.shape
        h = self.ln1(x)
        q, k, v = self.qkv(h).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.fc_out(F.gelu(self.fc(self.ln2(x))))


class VisionLm(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.projector = nn.Sequential(nn.Linear(a.dim, a.hidden), nn.GELU(), nn.Linear(a.hidden, a.width))
        self.tokens = nn.Embedding(a.vocab, a.width)
        self.positions = nn.Embedding(a.max_context, a.width)
        self.blocks = nn.ModuleList(Block(a.width, a.heads) for _ in range(a.layers))
        self.ln_f = nn.LayerNorm(a.width)
        self.head = nn.Linear(a.width, a.vocab)
        self.text_start = a.max_context - a.text_tokens  # where vislaw's model starts the text

    def forward(self, feats, text):
        v, l = feats.shape[1], text.shape[1]
        pos = torch.arange(self.text_start - v, self.text_start + l)
        x = torch.cat([self.projector(feats), self.tokens(text)], 1) + self.positions(pos)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln_f(x[:, v:]))


def make_step(a, model, feats, text, target):
    """One optimiser step of the benchmark (AdamW, β₂ = 0.95, clip 1.0); returns the loss
    before the step."""
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=a.weight_decay)

    def step():
        logits = model(feats, text)
        loss = F.cross_entropy(logits.reshape(-1, a.vocab), target.reshape(-1), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    return step


def train_rate(a):
    torch.manual_seed(0)
    model = VisionLm(a)
    feats = torch.randn(a.batch, a.visual, a.dim)
    text = torch.tensor([2, 7, 1]).repeat(a.batch, 1)  # question, colour, end of answer
    target = torch.tensor([7, 1, -100]).repeat(a.batch, 1)
    step = make_step(a, model, feats, text, target)
    for _ in range(5):
        step()
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    return a.steps * a.batch / (time.perf_counter() - t)


def rust_name(name):
    """vislaw's variable name of a parameter of VisionLm."""
    if name.startswith("projector."):
        layer, rest = name[len("projector."):].split(".", 1)
        return "projector." + {"0": "fc1", "2": "fc2"}[layer] + "." + rest
    return "lm." + name


def dump_losses(a):
    """Losses of --steps steps from the weights and batch in --init, float32 then float64."""
    from safetensors.torch import load_file
    saved = load_file(a.init)
    out = {}
    for dtype in [torch.float32, torch.float64]:
        model = VisionLm(a)
        state = {n: saved[rust_name(n)] for n, _ in model.named_parameters()}
        model.load_state_dict(state, strict=True)
        model = model.to(dtype)
        feats = saved["input.feats"].to(dtype)
        step = make_step(a, model, feats, saved["input.text"], saved["input.target"])
        out[str(dtype).removeprefix("torch.")] = [step() for _ in range(a.steps)]
    return {"losses": out["float32"], "losses_float64": out["float64"], "torch": torch.__version__}


def reduce(x, temporal, frames, spatial, k):
    n, f, g, _, d = x.shape
    if temporal == "sample":
        idx = torch.linspace(0, f - 1, frames).floor().long()
        x = x[:, idx]
    else:
        kt = math.ceil(f / frames)
        x = F.pad(x, (0, 0, 0, 0, 0, 0, 0, frames * kt - f)).reshape(n, frames, kt, g, g, d).mean(2)
    if spatial == "pool":
        pad = (k - g % k) % k
        y = F.pad(x.reshape(-1, g, g, d).permute(0, 3, 1, 2), (0, pad, 0, pad))
        y = F.avg_pool2d(y, k, k, count_include_pad=True)
        return y.permute(0, 2, 3, 1).reshape(n, frames, -1, d)
    idx = torch.arange(0, g, k)
    return x[:, :, idx][:, :, :, idx].reshape(n, frames, -1, d)


def reducer_rates(loops):
    """Frames/s of each reduction over loops[label] calls (20 when absent), after one untimed
    call: the counts vislaw calibrated, so both sides time the same work."""
    torch.manual_seed(0)
    x = torch.randn(4, 32, 27, 27, 64)
    out = {}
    with torch.no_grad():
        for temporal in ["sample", "pool"]:
            for spatial in ["pool", "sample"]:
                label = f"{spatial}/{temporal}"
                n = loops.get(label, 20)
                reduce(x, temporal, 16, spatial, 4).sum().item()
                t = time.perf_counter()
                for _ in range(n):
                    reduce(x, temporal, 16, spatial, 4).sum().item()
                out[label] = n * 4 * 32 / (time.perf_counter() - t)
    return out


def reducer_rate(x, label, calls):
    """Frames/s of reduction `label` over `calls` timed calls (no warm-up)."""
    spatial, temporal = label.split("/")
    if spatial not in ("pool", "sample") or temporal not in ("pool", "sample"):
        raise ValueError(f"unknown reducer {label!r}")
    with torch.no_grad():
        t = time.perf_counter()
        for _ in range(calls):
            reduce(x, temporal, 16, spatial, 4).sum().item()
        return calls * x.shape[0] * x.shape[1] / (time.perf_counter() - t)


def answer(req, a, step, x):
    """The answer to one --serve request."""
    figure = req["figure"]
    if figure == "train":
        steps = int(req["steps"])
        t = time.perf_counter()
        for _ in range(steps):
            step()
        return {"per_s": steps * a.batch / (time.perf_counter() - t)}
    if figure == "reduce":
        return {"per_s": reducer_rate(x, req["label"], int(req["calls"]))}
    raise ValueError(f"unknown figure {figure!r}")


def serve(a):
    """Answers requests on stdin until it closes (see the module's docstring)."""
    import sys
    torch.manual_seed(0)
    model = VisionLm(a)
    feats = torch.randn(a.batch, a.visual, a.dim)
    text = torch.tensor([2, 7, 1]).repeat(a.batch, 1)
    target = torch.tensor([7, 1, -100]).repeat(a.batch, 1)
    step = make_step(a, model, feats, text, target)
    for _ in range(5):
        step()
    torch.manual_seed(0)
    x = torch.randn(4, 32, 27, 27, 64)
    for line in sys.stdin:
        try:
            out = answer(json.loads(line), a, step, x)
        except Exception as e:  # a bad request is answered, never a hang
            out = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out), flush=True)


def main():
    p = argparse.ArgumentParser()
    for name, typ in [("batch", int), ("visual", int), ("dim", int), ("hidden", int), ("width", int), ("layers", int),
                      ("heads", int), ("vocab", int), ("max-context", int), ("text-tokens", int), ("steps", int), ("threads", int),
                      ("lr", float), ("weight-decay", float)]:
        p.add_argument("--" + name, type=typ, required=True)
    p.add_argument("--reduce-loops", default="", help="calls per reduction, label=count,... (default 20 each)")
    p.add_argument("--init", help="safetensors of the initial weights and the batch (vislaw's names)")
    p.add_argument("--dump-losses", action="store_true", help="print the losses of --steps steps from --init; time nothing")
    p.add_argument("--serve", action="store_true", help="answer timing requests on stdin, one JSON line each")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.serve:
        serve(a)
        return
    if a.dump_losses:
        if not a.init:
            p.error("--dump-losses needs --init")
        print(json.dumps(dump_losses(a)))
        return
    loops = {k: int(v) for k, v in (kv.split("=") for kv in a.reduce_loops.split(",") if kv)}
    print(json.dumps({"train_samples_per_s": train_rate(a), "reduce_frames_per_s": reducer_rates(loops),
                      "torch": torch.__version__, "threads": a.threads}))


if __name__ == "__main__":
    main()
