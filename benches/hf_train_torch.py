"""PyTorch-eager reference for `vislaw-bench hf-train`: the same projector (D -> hidden, GELU,
hidden -> the LM's hidden size) in front of the same Hugging Face LM (transformers
`AutoModelForCausalLM`, frozen), the same batch of random features [B, V, D] and random answer
tokens [B, L], the same loss (cross-entropy of every answer token, predicted from the position
before it) and the same optimiser (AdamW on the projector only), in float32.

One invocation is one timed repeat of `vislaw-bench hf-train`'s protocol: for each attention
implementation in --attn (transformers' "sdpa" and "eager"), the model is loaded, --warmup
untimed steps run, then --steps timed steps. Prints one JSON object with samples/s per
attention implementation.

With --init FILE --dump-losses it times nothing: it loads the projector's initial weights and
the batch vislaw wrote (`vislaw::bench::hf_train::write_fixture`: `projector.fc1.weight`, …,
`input.feats`, `input.text`), runs --steps steps and prints the loss before each, in float32
and again in float64 from the same start (the float64 run measures the float32 rounding noise
the same-work test's tolerance is set from)."""
import argparse, json, time
import torch
import torch.nn as nn
import torch.nn.functional as F
import transformers


def load_lm(a, attn, dtype):
    lm = transformers.AutoModelForCausalLM.from_pretrained(a.model, dtype=dtype, attn_implementation=attn)
    lm.requires_grad_(False)  # frozen: no gradient buffers, no optimiser state
    lm.train()
    return lm


def projector(dim, hidden, width):
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, width))


def make_step(a, lm, proj, feats, text):
    """One optimiser step; returns the loss before it."""
    opt = torch.optim.AdamW(proj.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=a.weight_decay)
    v, n = feats.shape[1], text.shape[1]

    def step():
        embeds = torch.cat([proj(feats), lm.get_input_embeddings()(text)], 1)
        hidden = lm.model(inputs_embeds=embeds).last_hidden_state
        logits = lm.lm_head(hidden[:, v - 1:v + n - 1])  # each answer token from the position before it
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), text.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def rate(a, attn):
    torch.manual_seed(0)
    lm = load_lm(a, attn, torch.float32)
    width = lm.config.hidden_size
    proj = projector(a.dim, a.hidden, width)
    feats = torch.randn(a.batch, a.visual, a.dim)
    text = torch.randint(0, lm.config.vocab_size, (a.batch, a.text_tokens))
    step = make_step(a, lm, proj, feats, text)
    for _ in range(a.warmup):
        step()
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    return a.steps * a.batch / (time.perf_counter() - t)


def dump_losses(a):
    from safetensors.torch import load_file
    saved = load_file(a.init)
    out = {}
    for dtype in [torch.float32, torch.float64]:
        lm = load_lm(a, a.attn.split(",")[0], dtype)
        feats = saved["input.feats"]
        proj = projector(feats.shape[2], saved["projector.fc1.weight"].shape[0], lm.config.hidden_size)
        proj.load_state_dict({"0.weight": saved["projector.fc1.weight"], "0.bias": saved["projector.fc1.bias"],
                              "2.weight": saved["projector.fc2.weight"], "2.bias": saved["projector.fc2.bias"]}, strict=True)
        proj = proj.to(dtype)
        text = saved["input.text"][:, :a.text_tokens]
        step = make_step(a, lm, proj, feats.to(dtype), text)
        out[str(dtype).removeprefix("torch.")] = [step() for _ in range(a.steps)]
    return {"losses": out["float32"], "losses_float64": out["float64"], "torch": torch.__version__}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, help="Hugging Face checkpoint directory")
    for name, typ in [("batch", int), ("visual", int), ("dim", int), ("hidden", int), ("text-tokens", int), ("steps", int),
                      ("warmup", int), ("threads", int), ("lr", float), ("weight-decay", float)]:
        p.add_argument("--" + name, type=typ, required=True)
    p.add_argument("--attn", default="sdpa,eager", help="attention implementations, comma-separated")
    p.add_argument("--init", help="safetensors of the projector's initial weights and the batch (vislaw's names)")
    p.add_argument("--dump-losses", action="store_true", help="print the losses of --steps steps from --init; time nothing")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.dump_losses:
        if not a.init:
            p.error("--dump-losses needs --init")
        print(json.dumps(dump_losses(a)))
        return
    rates = {attn: rate(a, attn) for attn in a.attn.split(",")}
    print(json.dumps({"samples_per_s": rates, "torch": torch.__version__, "transformers": transformers.__version__,
                      "threads": a.threads}))


if __name__ == "__main__":
    main()
