// Accelerate launch configurations (the YAML `accelerate config` writes; accelerate's commands/config/cluster.py and
// utils/dataclasses.py DeepSpeedPlugin / FullyShardedDataParallelPlugin field names): one GPU, several GPUs (DDP),
// DeepSpeed ZeRO-2 and ZeRO-3, FSDP. num_processes 8 is a placeholder the README tells to change (or to override
// with `accelerate launch --num_processes N`).

export const ACCELERATE_CONFIGS: Record<string, string> = {
  'single_gpu.yaml': `compute_environment: LOCAL_MACHINE
distributed_type: 'NO'
mixed_precision: 'no'
num_machines: 1
num_processes: 1
machine_rank: 0
gpu_ids: '0'
use_cpu: false
`,
  'multi_gpu.yaml': `compute_environment: LOCAL_MACHINE
distributed_type: MULTI_GPU
mixed_precision: 'no'
num_machines: 1
num_processes: 8
machine_rank: 0
gpu_ids: all
main_training_function: main
use_cpu: false
`,
  'deepspeed_zero2.yaml': `compute_environment: LOCAL_MACHINE
distributed_type: DEEPSPEED
deepspeed_config:
  zero_stage: 2
  gradient_accumulation_steps: auto
  gradient_clipping: auto
  offload_optimizer_device: none
  offload_param_device: none
  zero3_init_flag: false
mixed_precision: 'no'
num_machines: 1
num_processes: 8
machine_rank: 0
use_cpu: false
`,
  'deepspeed_zero3.yaml': `compute_environment: LOCAL_MACHINE
distributed_type: DEEPSPEED
deepspeed_config:
  zero_stage: 3
  gradient_accumulation_steps: auto
  gradient_clipping: auto
  offload_optimizer_device: none
  offload_param_device: none
  zero3_init_flag: true
  zero3_save_16bit_model: true
mixed_precision: 'no'
num_machines: 1
num_processes: 8
machine_rank: 0
use_cpu: false
`,
  'fsdp.yaml': `compute_environment: LOCAL_MACHINE
distributed_type: FSDP
fsdp_config:
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_transformer_layer_cls_to_wrap: LlamaDecoderLayer
  fsdp_backward_prefetch: BACKWARD_PRE
  fsdp_cpu_ram_efficient_loading: true
  fsdp_forward_prefetch: false
  fsdp_offload_params: false
  fsdp_sharding_strategy: FULL_SHARD
  fsdp_state_dict_type: SHARDED_STATE_DICT
  fsdp_sync_module_states: true
  fsdp_use_orig_params: true
mixed_precision: 'no'
num_machines: 1
num_processes: 8
machine_rank: 0
use_cpu: false
`,
};

/** FSDP wraps the model's decoder layer class: Llama's, or Qwen2's for that architecture. */
export function accelerateConfigs(arch: string): Record<string, string> {
  const layer = arch === 'qwen2' ? 'Qwen2DecoderLayer' : 'LlamaDecoderLayer';
  return { ...ACCELERATE_CONFIGS, 'fsdp.yaml': ACCELERATE_CONFIGS['fsdp.yaml'].replace('LlamaDecoderLayer', layer) };
}
