#!/usr/bin/env python3
"""The GPU-machine check of nomoat's hand-offs (issue 19): one command, on a machine with torch, transformers, peft,
accelerate and safetensors.

README
------
Prepare here (nomoat, no GPU needed), e.g. on the bundled model:

    nomoat finetune assets/data/demo.jsonl -o gpu-check/trained --steps 20 --target-modules all-linear
    nomoat export gpu-check/trained -m assets/default-model --for peft -o gpu-check/export
    nomoat finetune assets/data/demo.jsonl --handoff gpu-check/handoff --target-modules all-linear

Then, on the GPU machine, from the repository root:

    python3 scripts/gpu-handoff-check.py gpu-check/export gpu-check/handoff

It (1) loads the exported Hugging Face folder + each PEFT adapter with transformers + peft in float32 and compares
the next-token logits of every prompt in expected-logits.json (written by nomoat export --for peft) with nomoat's:
max |delta| <= 1e-3 or it fails; (2) runs the hand-off's train.py for 20 steps on one GPU (accelerate launch with
accelerate/single_gpu.yaml); (3) prints the `nomoat import` line for the adapter that came back, and runs it when
node and a built nomoat (dist/) are there. Exit status 0 only when every step passed.
Subcommands for one step alone: `logits EXPORT_DIR`, `train HANDOFF_DIR [--steps N]`.
"""
import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def check_logits(export_dir):
    """(1) transformers + peft next-token logits against nomoat's; returns the worst |delta| over every prompt."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    export_dir = Path(export_dir)
    spec = json.loads((export_dir / "expected-logits.json").read_text(encoding="utf-8"))
    if spec.get("dtype") != "F32":
        sys.exit(f"{export_dir}: expected-logits.json is for {spec.get('dtype')}; export with --outtype f32")
    tol = float(spec.get("tolerance", 1e-3))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 means float32: TF32 alone moves logits by ~1e-3
    torch.backends.cudnn.allow_tf32 = False

    def last_logits(model, ids):
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids], device=device))
        return out.logits[0, -1].float().cpu()

    worst = 0.0
    failures = []
    for name in ["base", *spec["adapters"].keys()]:
        model = AutoModelForCausalLM.from_pretrained(str(export_dir / spec["base"]), torch_dtype=torch.float32).to(device)
        if name != "base":
            model = PeftModel.from_pretrained(model, str(export_dir / spec["adapters"][name])).to(device)
        model.eval()
        for p in spec["prompts"]:
            ours = last_logits(model, p["ids"])
            want = torch.tensor(p["logits"][name], dtype=torch.float32)
            d = (ours - want).abs().max().item()
            same_top = int(ours.argmax()) == int(want.argmax())
            print(f"  {name:>12}  {p['text'][:30]!r:34} max|delta| {d:.2e}  argmax {'same' if same_top else 'DIFFERENT'}")
            worst = max(worst, d)
            if d > tol or not same_top:
                failures.append(f"{name} / {p['text']!r}: max|delta| {d:.3e}")
        del model
    print(f"(1) logits: worst max|delta| {worst:.3e} (tolerance {tol:g})")
    if failures:
        print("    FAILED: " + "; ".join(failures))
    return not failures


def run_handoff(handoff_dir, steps):
    """(2) the hand-off's train.py for `steps` steps on one GPU; returns the adapter folder or None."""
    handoff_dir = Path(handoff_dir)
    args = ["train.py", "--max-steps", str(steps)]
    if shutil.which("accelerate"):
        cmd = ["accelerate", "launch", "--config_file", "accelerate/single_gpu.yaml", *args]
    else:
        cmd = [sys.executable, *args]
    print(f"(2) {' '.join(cmd)}  (in {handoff_dir})")
    r = subprocess.run(cmd, cwd=handoff_dir)
    cfg = json.loads((handoff_dir / "handoff.json").read_text(encoding="utf-8"))
    adapter = handoff_dir / cfg["output_dir"] / "adapter"
    ok = r.returncode == 0 and (adapter / "adapter_config.json").exists() and (adapter / "adapter_model.safetensors").exists()
    print(f"(2) train.py: {'ok' if ok else f'FAILED (exit {r.returncode})'}")
    return (adapter, cfg) if ok else (None, cfg)


def bring_back(adapter, cfg):
    """(3) the nomoat import line; run when node and a built nomoat are here."""
    line = ["node", str(REPO / "bin" / "nomoat.js"), "import", str(adapter), "-m", cfg["base_model_local"], "--into", str(adapter.parent / "library"), "--force"]
    print("(3) bring it back: nomoat import " + " ".join(line[3:]))
    if shutil.which("node") and (REPO / "dist").exists() and Path(cfg["base_model_local"]).exists():
        r = subprocess.run(line)
        print(f"(3) nomoat import: {'ok' if r.returncode == 0 else f'FAILED (exit {r.returncode})'}")
        return r.returncode == 0
    print("(3) not run here (no node, no dist/ or the base is not on this machine): run the line above where nomoat is")
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    a = sub.add_parser("logits")
    a.add_argument("export_dir")
    t = sub.add_parser("train")
    t.add_argument("handoff_dir")
    t.add_argument("--steps", type=int, default=20)
    argv = sys.argv[1:]
    if argv and argv[0] not in ("logits", "train", "-h", "--help"):
        both = argparse.ArgumentParser()
        both.add_argument("export_dir")
        both.add_argument("handoff_dir")
        both.add_argument("--steps", type=int, default=20)
        o = both.parse_args(argv)
        ok = check_logits(o.export_dir)
        adapter, cfg = run_handoff(o.handoff_dir, o.steps)
        ok = ok and adapter is not None and bring_back(adapter, cfg)
        print("ALL PASSED" if ok else "SOME CHECKS FAILED")
        sys.exit(0 if ok else 1)
    o = ap.parse_args(argv)
    if o.cmd == "logits":
        sys.exit(0 if check_logits(o.export_dir) else 1)
    if o.cmd == "train":
        adapter, cfg = run_handoff(o.handoff_dir, o.steps)
        if adapter is not None:
            bring_back(adapter, cfg)
        sys.exit(0 if adapter is not None else 1)
    ap.print_help()
    sys.exit(2)


if __name__ == "__main__":
    main()
