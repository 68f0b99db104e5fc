// The train.py that `nomoat finetune --handoff DIR` writes: static Python (every setting comes from DIR/handoff.json,
// so nothing is pasted into code) that reruns the nomoat run on transformers' Trainer + peft's LoraConfig.
//
// What it keeps identical to nomoat (src/train/finetune.ts, batching.ts, tokenizer/chat.ts):
//   - tokenization: the chat template rendered by tokenizer.apply_chat_template(chat_template=…), encoded with
//     add_special_tokens=False; the assistant mask by nomoat's own method (render the conversation before each
//     assistant turn with the generation prompt, and up to it without; the tokens between the two common prefixes
//     with the whole), or --mask generation: apply_chat_template(return_assistant_tokens_mask=True) for templates
//     with {% generation %}; the first conversations are checked against nomoat's ids and masks (token-check.json);
//   - rows: packed (the conversations concatenated, cut into seq_len windows, labels pre-shifted, no separator) or
//     padded (one conversation per row, truncated), rows without a trained label dropped;
//   - loss: cross-entropy summed over trained labels and divided by the trained labels of the whole accumulated
//     update (Trainer's num_items_in_batch), as nomoat weights micro-batches by their targets;
//   - AdamW (betas, eps, decoupled weight decay), max grad norm, lr schedule + warmup, max_steps, seed, LoRA r /
//     alpha / dropout / rsLoRA / target modules / layers.
// What differs: the shuffling RNG (torch's, not nomoat's), dropout masks, and float precision (--dtype).
// TRL: --trainer trl runs TRL's SFTTrainer on the messages with assistant_only_loss (needs a {% generation %}
// template) and TRL's own packing: close to the nomoat run, not the same rows.

export const TRAIN_PY = String.raw`#!/usr/bin/env python3
"""LoRA fine-tuning hand-off written by nomoat finetune --handoff: the nomoat run, on transformers + peft.

    accelerate launch --config_file accelerate/single_gpu.yaml train.py [--max-steps N] [--dtype bfloat16]

Every hyperparameter comes from handoff.json beside this file. The adapter is written to OUTPUT/adapter (a PEFT
folder, with the nomoat base fingerprint recorded), ready for: nomoat import OUTPUT/adapter -m BASE.
"""
import argparse
import json
import math
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
IGNORE = -100


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def common_prefix(a, b):
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class ChatTokenizer:
    """nomoat's tokenizeChat: ids of the rendered conversation and the mask of assistant tokens."""

    def __init__(self, tokenizer, template, mask_mode):
        self.tok = tokenizer
        self.template = template
        self.mask_mode = mask_mode

    def render(self, messages, add_generation_prompt):
        return self.tok.apply_chat_template(messages, chat_template=self.template, tokenize=False, add_generation_prompt=add_generation_prompt)

    def encode(self, text):
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def __call__(self, messages):
        if self.mask_mode == "generation":
            out = self.tok.apply_chat_template(messages, chat_template=self.template, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
            return list(out["input_ids"]), [int(x) for x in out["assistant_masks"]]
        ids = self.encode(self.render(messages, False))
        mask = [0] * len(ids)
        for k, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            start = common_prefix(self.encode(self.render(messages[:k], True)), ids)
            end = common_prefix(self.encode(self.render(messages[: k + 1], False)), ids)
            for i in range(start, max(start, end)):
                mask[i] = 1
        return ids, mask


def packed_rows(examples, seq_len, pad_id):
    """nomoat's packExamples(eosId=null): one stream, windows of seq_len, labels shifted by one."""
    stream, train = [], []
    for ids, mask in examples:
        stream.extend(ids)
        train.extend(mask)
    rows, start, n = [], 0, len(stream)
    while start + 1 < n:
        avail = min(seq_len, n - 1 - start)
        ids = [pad_id] * seq_len
        labels = [IGNORE] * seq_len
        for t in range(avail):
            ids[t] = stream[start + t]
            if train[start + t + 1]:
                labels[t] = stream[start + t + 1]
        rows.append({"input_ids": ids, "labels": labels, "length": avail})
        start += seq_len
    return rows


def padded_rows(examples, seq_len):
    """nomoat's padRows: one row per conversation, truncated to seq_len positions."""
    rows = []
    for ids, mask in examples:
        if len(ids) < 2:
            continue
        L = min(len(ids) - 1, seq_len)
        rows.append({"input_ids": ids[:L], "labels": [ids[t + 1] if mask[t + 1] else IGNORE for t in range(L)], "length": L})
    return rows


def make_rows(chat, conversations, cfg, pad_id):
    examples = [chat(c["messages"]) for c in conversations]
    rows = packed_rows(examples, cfg["seq_len"], pad_id) if cfg["packing"] == "packed" else padded_rows(examples, cfg["seq_len"])
    kept = [r for r in rows if any(l != IGNORE for l in r["labels"])]
    return kept, len(rows) - len(kept)


def check_tokens(chat, path):
    """The first conversations must tokenize (ids and mask) exactly as nomoat did."""
    if not path.exists():
        return
    for i, ref in enumerate(json.loads(path.read_text(encoding="utf-8"))["examples"]):
        ids, mask = chat(ref["messages"])
        if ids != ref["ids"]:
            at = common_prefix(ids, ref["ids"])
            sys.exit(f"token check: conversation {i} tokenizes differently from nomoat at token {at} (ours {ids[at:at + 5]}, nomoat {ref['ids'][at:at + 5]}); is this the same tokenizer? (--skip-token-check to go on)")
        if mask != ref["mask"]:
            at = common_prefix(mask, ref["mask"])
            sys.exit(f"token check: conversation {i}: the assistant mask differs from nomoat's at token {at} (--mask prefix is nomoat's method; --skip-token-check to go on)")


class Collator:
    def __init__(self, pad_id):
        self.pad_id = pad_id

    def __call__(self, rows):
        import torch

        T = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), T), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), T), IGNORE, dtype=torch.long)
        attn = torch.zeros((len(rows), T), dtype=torch.long)
        for b, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[b, :n] = torch.tensor(r["input_ids"])
            labels[b, :n] = torch.tensor(r["labels"])
            attn[b, : max(r["length"], 1)] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": attn}


def shifted_loss(model, inputs, num_items_in_batch):
    """Cross-entropy on labels that are already shifted (nomoat's rows), averaged over the update's trained labels."""
    import torch.nn.functional as F

    labels = inputs.pop("labels")
    out = model(**inputs)
    logits = out.logits.float()
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1).to(logits.device), ignore_index=IGNORE, reduction="sum")
    n = num_items_in_batch if num_items_in_batch is not None else (labels != IGNORE).sum()
    return loss / n, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(HERE / "handoff.json"))
    ap.add_argument("--base", help="the base model (folder or hub id); default: handoff.json base_model")
    ap.add_argument("--output", help="output folder; default: handoff.json output_dir")
    ap.add_argument("--max-steps", type=int, help="override the step count (e.g. 20 for a smoke run)")
    ap.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"], default="auto", help="auto: bfloat16 where the GPU has it, else float32 (nomoat trains in float32)")
    ap.add_argument("--mask", choices=["prefix", "generation"], default="prefix", help="assistant mask: nomoat's prefix method, or the template's {%% generation %%} blocks")
    ap.add_argument("--trainer", choices=["hf", "trl"], default="hf", help="hf: transformers Trainer on nomoat's rows (the same run); trl: TRL SFTTrainer, assistant_only_loss")
    ap.add_argument("--keep-global-batch", action=argparse.BooleanOptionalAction, default=True, help="divide gradient accumulation by the number of processes so batch x accumulation stays nomoat's")
    ap.add_argument("--skip-token-check", action="store_true")
    args = ap.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments, set_seed

    cfg = json.loads(Path(args.config).read_text(encoding="utf-8"))
    t = cfg["training"]
    base = args.base or cfg["base_model"]
    out_dir = Path(args.output or (HERE / cfg["output_dir"]))
    set_seed(t["seed"])
    template = (HERE / cfg["chat_template_file"]).read_text(encoding="utf-8")

    world = int(os.environ.get("WORLD_SIZE", "1"))
    accum = t["grad_accum"]
    if args.keep_global_batch and world > 1:
        if accum % world == 0:
            accum //= world
        else:
            print(f"note: {world} processes x grad_accum {accum}: the global batch is {world}x nomoat's (grad_accum is not divisible)", file=sys.stderr)

    if args.dtype == "auto":
        dtype = torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    else:
        dtype = getattr(torch, args.dtype)

    tokenizer = AutoTokenizer.from_pretrained(base)
    pad_id = cfg["pad_id"]
    chat = ChatTokenizer(tokenizer, template, args.mask)
    if not args.skip_token_check:
        check_tokens(chat, HERE / "token-check.json")
    train_convs = read_jsonl(HERE / cfg["train_file"])
    eval_convs = read_jsonl(HERE / cfg["eval_file"]) if cfg.get("eval_file") else []

    model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=dtype)
    lora = cfg["lora"]
    if cfg.get("init_adapter"):
        model = PeftModel.from_pretrained(model, cfg["init_adapter"], is_trainable=True)
    else:
        lc = LoraConfig(
            r=lora["r"], lora_alpha=lora["lora_alpha"], lora_dropout=lora["lora_dropout"], use_rslora=lora["use_rslora"],
            target_modules=lora["target_modules"], layers_to_transform=lora.get("layers_to_transform"), bias="none", task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lc)
    model.print_trainable_parameters()

    steps = args.max_steps or t["steps"]
    targs = dict(
        output_dir=str(out_dir), max_steps=steps, learning_rate=t["lr"], lr_scheduler_type=t["schedule"], warmup_steps=t["warmup_steps"],
        per_device_train_batch_size=t["batch_size"], per_device_eval_batch_size=t["batch_size"], gradient_accumulation_steps=accum,
        weight_decay=t["weight_decay"], max_grad_norm=t["max_grad_norm"], adam_beta1=t["adam_beta1"], adam_beta2=t["adam_beta2"],
        adam_epsilon=t["adam_epsilon"], optim="adamw_torch", seed=t["seed"], data_seed=t["seed"], logging_steps=t["log_every"],
        save_strategy="steps" if t["save_every"] > 0 else "no", save_steps=max(t["save_every"], 1),
        eval_strategy="steps" if (t["eval_every"] > 0 and eval_convs) else "no", eval_steps=max(t["eval_every"], 1),
        bf16=dtype == torch.bfloat16, fp16=dtype == torch.float16, report_to="none", remove_unused_columns=False,
    )

    if args.trainer == "trl":
        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer

        sft = SFTConfig(**targs, max_length=cfg["training"]["seq_len"], packing=cfg["training"]["packing"] == "packed", assistant_only_loss=True)
        tokenizer.chat_template = template
        trainer = SFTTrainer(model=model, args=sft, train_dataset=Dataset.from_list(train_convs), eval_dataset=Dataset.from_list(eval_convs) if eval_convs else None, processing_class=tokenizer)
    else:
        train_rows, dropped = make_rows(chat, train_convs, t, pad_id)
        eval_rows, _ = make_rows(chat, eval_convs, t, pad_id) if eval_convs else ([], 0)
        if len(train_rows) != cfg["nomoat_rows"]["train"]:
            print(f"note: {len(train_rows)} training rows here, nomoat made {cfg['nomoat_rows']['train']}", file=sys.stderr)
        print(f"{len(train_rows)} training rows ({dropped} without a trained token dropped), {len(eval_rows)} eval rows; {steps} steps", file=sys.stderr)

        class NomoatTrainer(Trainer):
            def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
                loss, out = shifted_loss(model, inputs, num_items_in_batch)
                return (loss, out) if return_outputs else loss

        trainer = NomoatTrainer(model=model, args=TrainingArguments(**targs), train_dataset=train_rows, eval_dataset=eval_rows or None, data_collator=Collator(pad_id))

    trainer.train()
    if eval_convs:
        print(json.dumps(trainer.evaluate()), file=sys.stderr)
    adapter_dir = out_dir / "adapter"
    trainer.save_model(str(adapter_dir))  # every process: ZeRO-3 and FSDP gather the sharded adapter here
    if trainer.is_world_process_zero():
        # the base fingerprint nomoat recorded, so that nomoat import can check the adapter comes back to its base
        conf_path = adapter_dir / "adapter_config.json"
        conf = json.loads(conf_path.read_text(encoding="utf-8"))
        conf["nomoat"] = {"format": 1, "fingerprint": cfg["base_fingerprint"]}
        conf_path.write_text(json.dumps(conf, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {adapter_dir}\nbring it back: nomoat import {adapter_dir} -m {cfg['base_model_local']}")


if __name__ == "__main__":
    main()
`;
