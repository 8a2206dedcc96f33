#!/usr/bin/env python3
"""PyTorch / HF transformers baselines on the same GPU as the akv CUDA numbers.

1. device-to-device copy bandwidth (bytes read + written);
2. SDPA decode attention over an f16 cache: batch 8, 32 heads x 128, contexts 4K..64K;
3. "de-quantize int4 with torch ops, then SDPA" (group 32 asymmetric, codes packed 2 per byte);
4. HF transformers end to end: Llama-2-7B shape, random f16 weights, batch 1, DynamicCache,
   decode tokens/s after a prefill of 4K / 16K / 32K tokens (--hf).
Medians of CUDA-event timings after warm-up. Never asserts on time.
"""
import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F


def timed(fn, iters=30, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(iters):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    ts.sort()
    return ts[len(ts) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="")
    ap.add_argument("--hf", action="store_true")
    ap.add_argument("--contexts", default="4096,16384,32768,65536")
    ap.add_argument("--hf-contexts", default="4096,16384,32768")
    args = ap.parse_args()
    dev = torch.cuda.get_device_name(0)
    out = {"device": dev, "torch": torch.__version__}
    n = 1 << 29  # 2 GiB of f32
    a = torch.randn(n, device="cuda")
    b = torch.empty_like(a)
    ms = timed(lambda: b.copy_(a), iters=20)
    copy = 2 * a.numel() * 4 / (ms * 1e-3) / 1e9
    out["copy_gbps"] = copy
    print(f"device: {dev}, torch {torch.__version__}; copy {copy:.0f} GB/s", flush=True)
    del a, b
    B, H, D = 8, 32, 128
    rows = []
    print(f"| {'baseline':36} | {'context':>7} | {'ms':>8} | {'GB/s':>7} |")
    print("|--------------------------------------|---------|----------|---------|")
    for L in [int(x) for x in args.contexts.split(",")]:
        q = torch.randn(B, H, 1, D, device="cuda", dtype=torch.float16)
        k = torch.randn(B, H, L, D, device="cuda", dtype=torch.float16)
        v = torch.randn(B, H, L, D, device="cuda", dtype=torch.float16)
        ms = timed(lambda: F.scaled_dot_product_attention(q, k, v))
        gbps = 2 * B * H * L * D * 2 / (ms * 1e-3) / 1e9
        rows.append({"baseline": "sdpa-f16", "context": L, "ms": ms, "gbps": gbps})
        print(f"| {'SDPA over f16':36} | {L:7d} | {ms:8.3f} | {gbps:7.0f} |", flush=True)
        del k, v
        # int4 codes (2 per byte) + f16 scale/zero per group of 32, de-quantized with torch ops.
        G = 32
        kc = torch.randint(0, 256, (B, H, L, D // 2), device="cuda", dtype=torch.uint8)
        vc = torch.randint(0, 256, (B, H, L, D // 2), device="cuda", dtype=torch.uint8)
        ks = torch.rand(B, H, L, D // G, device="cuda", dtype=torch.float16)
        kz = torch.rand(B, H, L, D // G, device="cuda", dtype=torch.float16)
        vs, vz = ks.clone(), kz.clone()

        def deq(c, s, z):
            lo = (c & 0x0F).to(torch.float16)
            hi = (c >> 4).to(torch.float16)
            x = torch.cat([lo, hi], dim=-1).view(B, H, L, D // G, G)
            return (x * s.unsqueeze(-1) + z.unsqueeze(-1)).view(B, H, L, D)

        ms = timed(lambda: F.scaled_dot_product_attention(q, deq(kc, ks, kz), deq(vc, vs, vz)), iters=10)
        rows.append({"baseline": "torch-dequant-int4+sdpa", "context": L, "ms": ms})
        print(f"| {'de-quantize int4 (torch ops) + SDPA':36} | {L:7d} | {ms:8.3f} | {'':>7} |", flush=True)
        del kc, vc, ks, kz, vs, vz, q
        torch.cuda.empty_cache()
    out["attention"] = rows
    if args.hf:
        from transformers import LlamaConfig, LlamaForCausalLM
        cfg = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                          num_key_value_heads=32, vocab_size=32000, max_position_embeddings=65536)
        torch.manual_seed(0)
        torch.set_default_dtype(torch.float16)
        with torch.device("cuda"):
            model = LlamaForCausalLM(cfg)
        torch.set_default_dtype(torch.float32)
        model.eval()
        hf = []
        for L in [int(x) for x in args.hf_contexts.split(",")]:
            torch.cuda.reset_peak_memory_stats()
            ids = torch.randint(0, 32000, (1, L), device="cuda")
            with torch.no_grad():
                t0 = time.time()
                o = model(ids, use_cache=True, logits_to_keep=1)
                torch.cuda.synchronize()
                t_pre = time.time() - t0
                cache = o.past_key_values
                tok = o.logits[:, -1:].argmax(-1)
                times = []
                for i in range(18):
                    torch.cuda.synchronize()
                    t0 = time.time()
                    o = model(tok, past_key_values=cache, use_cache=True)
                    tok = o.logits[:, -1:].argmax(-1)
                    torch.cuda.synchronize()
                    if i >= 2:
                        times.append(time.time() - t0)
                    cache = o.past_key_values
            tps = len(times) / sum(times)
            peak = torch.cuda.max_memory_allocated() / 2**30
            hf.append({"context": L, "decode_tokens_per_s": tps, "prefill_s": t_pre, "peak_gib": peak})
            print(f"HF transformers Llama-2-7B shape f16 DynamicCache ctx {L}: decode {tps:.1f} tokens/s, "
                  f"prefill {t_pre:.1f} s, peak {peak:.1f} GiB", flush=True)
            del cache, o
            torch.cuda.empty_cache()
        out["hf"] = hf
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
